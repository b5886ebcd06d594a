"""The workspace under a property-based fuzz (issue 24), on SQLite: every route but the API's,
read from the app itself, gets hostile ids, query values, form fields and import files, signed
in and (where the route is public) anonymously; any 5xx fails. tests/support/workspace_fuzz.py
holds the fuzz; tests/integration/test_postgres_hostile.py runs it on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from switchboard.accounts.services import create_user
from switchboard.app import create_app
from switchboard.chat.services import add_message, create_conversation
from switchboard.settings import load_settings
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer
from tests.support.web_session import WebSession
from tests.support.workspace_fuzz import (
    SIGNED_IN_ONLY_AS_VISITOR,
    Target,
    form_or_id_routes,
    fuzz,
    targets,
)

PASSWORD = "a long enough password"  # pragma: allowlist secret
EXAMPLES = 6
"""Random examples per route and caller, after the seeds (workspace_fuzz.seeds): about 450
requests in all, in about half a minute."""


def fuzz_settings(data_dir: Path, **overrides: Any) -> Any:
    env = {
        "SWITCHBOARD_ENVIRONMENT": "test",
        "SWITCHBOARD_DATA_DIR": str(data_dir),
        "SWITCHBOARD_UPSTREAM_URLS": "http://upstream.test/v1",
        "SWITCHBOARD_DEFAULT_MODEL": "fake-model",
        "SWITCHBOARD_UPSTREAM_TOTAL_TIMEOUT": "30",
        "SWITCHBOARD_IMPORTS_PER_HOUR": "100000",
        "SWITCHBOARD_MAX_FOLLOWER_STREAMS": "1000",
    }
    env.update({f"SWITCHBOARD_{k.upper()}": str(v) for k, v in overrides.items()})
    return load_settings(env, dotenv=data_dir / "absent.env")


ROUTES = targets(create_app(fuzz_settings(Path("/nonexistent"))))
"""Read at collection from an app that is never started: each route is a test of its own."""


@dataclass
class World:
    server: LiveServer
    admin: WebSession
    visitor: WebSession
    real_ids: dict[str, list[int]]
    never: frozenset[int]


async def populate(server: LiveServer) -> tuple[dict[str, list[int]], int]:
    """A member with a conversation and a key, then the admin with the same (their ids are
    the fuzz's real ones); the admin's own user id, which the fuzz must not reset."""
    member = await create_user("member", password=PASSWORD)
    admin = await create_user("boss", password=PASSWORD, role="admin")
    ids: dict[str, list[int]] = {"conversation_id": [], "message_id": [], "key_id": []}
    for user in (member, admin):
        chat = await create_conversation(int(user.id), "fake-model")
        ids["conversation_id"].append(int(chat.id))
        for role in ("user", "assistant"):
            message = await add_message(chat, role, f"{role} text")
            ids["message_id"].append(int(message.id))
        key = await server.app.state.resources.keys.mint(int(user.id), name="fuzz")
        ids["key_id"].append(key.key_id)
    ids["user_id"] = [int(member.id)]
    return ids, int(admin.id)


def open_world(server: LiveServer) -> World:
    real_ids, admin_id = server.run(populate(server))
    admin, visitor = WebSession(server.url), WebSession(server.url)
    assert admin.sign_in("boss", PASSWORD).status_code == 303
    return World(server, admin, visitor, real_ids, frozenset({admin_id}))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    settings = fuzz_settings(tmp_path_factory.mktemp("fuzz"))
    server = LiveServer(create_app(settings, upstream_transport=FakeUpstream().transport()))
    server.start()
    opened = open_world(server)
    try:
        yield opened
    finally:
        opened.admin.close()
        opened.visitor.close()
        server.stop()


def test_every_form_and_id_route_is_fuzzed() -> None:
    app = create_app(fuzz_settings(Path("/nonexistent")))
    fuzzed = {target.name for target in targets(app)}
    assert form_or_id_routes(app) - fuzzed == set()
    assert len(fuzzed) >= 30
    assert {t.name for t in ROUTES if t.public} >= {"GET /signin", "POST /signin", "POST /signout"}


@pytest.mark.parametrize(
    "target",
    [t for t in ROUTES if (t.method, t.path) not in SIGNED_IN_ONLY_AS_VISITOR],
    ids=lambda t: t.name,
)
def test_signed_in_no_input_reaches_a_500(world: World, target: Target) -> None:
    fuzz(world.admin.http, target, world.real_ids, world.never, world.admin.csrf, EXAMPLES)
    assert world.admin.get("/chat").status_code == 200  # still signed in: the fuzz went deep


@pytest.mark.parametrize("target", [t for t in ROUTES if t.public], ids=lambda t: t.name)
def test_anonymous_no_input_reaches_a_500(world: World, target: Target) -> None:
    fuzz(world.visitor.http, target, world.real_ids, world.never, world.visitor.csrf, EXAMPLES)

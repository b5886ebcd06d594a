"""Issue 24's findings on PostgreSQL, stricter than SQLite (an integer column ends at 2^31 - 1,
text cannot hold NUL, and the server's zone shifts what it reads back): a NUL in the session
cookie, ids beyond the columns on every id route, NUL in a key name or username, imports dated
where no page can show them; then the workspace fuzz (tests/support/workspace_fuzz.py) on a
PostgreSQL database. The server runs in UTC+14 (tests/support/postgres.py)."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator

import pytest

from switchboard.accounts.services import create_user
from switchboard.app import create_app
from tests.conftest import WebFactory
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer
from tests.support.postgres import PostgresServer
from tests.support.web_session import WebSession
from tests.support.workspace_fuzz import SIGNED_IN_ONLY_AS_VISITOR, Target, fuzz
from tests.unit.test_hostile_input import ID_PARAMETER, id_routes, unhandled
from tests.unit.test_input_limits import conversation, export_of, owned, upload
from tests.unit.test_workspace_fuzz import ROUTES, World, fuzz_settings, open_world

pytestmark = pytest.mark.postgres

PASSWORD = "a long enough password"  # pragma: allowlist secret
EXAMPLES = 3
"""Random examples per route on PostgreSQL, after the seeds: about 300 requests."""
_databases = itertools.count(1)


@pytest.fixture
def boss(pg_app: LiveServer, web: WebFactory) -> WebSession:
    pg_app.run(create_user("boss", password=PASSWORD, role="admin"))
    session = web(pg_app.url)
    assert session.sign_in("boss", PASSWORD).status_code == 303
    return session


@pytest.mark.parametrize("value", ["%00", "abc%00def", "%00" * 64])
def test_a_nul_in_the_session_cookie_is_ignored_not_a_500(
    pg_app: LiveServer, web: WebFactory, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    visitor = web(pg_app.url)
    visitor.http.cookies.set("sb_session", value)
    assert visitor.http.get("/signin").status_code == 200
    assert visitor.http.get("/chat").status_code == 303
    assert unhandled(caplog) == []


def test_every_id_route_answers_404_for_ids_beyond_the_integer_column(
    pg_app: LiveServer, boss: WebSession, caplog: pytest.LogCaptureFixture
) -> None:
    chat = boss.new_conversation()
    checked = 0
    for method, template in id_routes(pg_app.app):
        for big in (2**31, 2**63):
            path = ID_PARAMETER.sub(str(big), template)
            response = boss.get(path) if method == "GET" else boss.post(path, {})
            assert response.status_code == 404, (method, path, response.status_code)
            checked += 1
        first = ID_PARAMETER.sub(lambda m: str(chat), template, count=1)
        if ID_PARAMETER.search(first):  # a real conversation, the message id beyond
            path = ID_PARAMETER.sub(str(2**31), first)
            response = boss.get(path) if method == "GET" else boss.post(path, {})
            assert response.status_code == 404, (method, path, response.status_code)
    assert checked >= 30
    assert unhandled(caplog) == []


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/keys/", {"name": "lap\x00top"}),
        ("/admin/users", {"username": "nul\x00name", "password": PASSWORD}),
        ("/admin/budgets/prices/remove", {"model": "nul\x00model"}),
    ],
)
def test_a_nul_in_a_name_is_a_400_not_a_500(
    boss: WebSession, caplog: pytest.LogCaptureFixture, path: str, form: dict[str, str]
) -> None:
    response = boss.post(path, form)
    assert response.status_code == 400, response.status_code
    assert "NUL character" in response.text
    assert unhandled(caplog) == []


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
def test_an_import_dated_beyond_what_pages_show_is_refused(
    boss: WebSession, caplog: pytest.LogCaptureFixture, when: str
) -> None:
    """PostgreSQL stored these, then every chat page failed to read them back (year 0)."""
    response = upload(boss, export_of(conversation("old", created_at=when, updated_at=when)))
    assert response.status_code == 400
    assert "is outside 1970 to 2100" in response.text
    assert boss.get("/chat").status_code == 200
    assert unhandled(caplog) == []


def test_chatgpt_times_beyond_what_pages_show_are_left_out(
    boss: WebSession, caplog: pytest.LogCaptureFixture
) -> None:
    stamp = -62135596800  # 0001-01-01
    node = {
        "message": {"author": {"role": "user"}, "content": {"parts": ["hi"]}, "create_time": stamp}
    }
    body = json.dumps([{"title": "old", "create_time": stamp, "mapping": {"a": node}}])
    assert upload(boss, body).status_code == 303
    assert boss.get("/chat").status_code == 200
    assert [c["title"] for c in owned(boss)] == ["old"]
    assert unhandled(caplog) == []


def test_an_import_without_a_zone_is_utc_not_the_servers(boss: WebSession) -> None:
    response = upload(boss, export_of(conversation("naive", updated_at="2024-03-01T10:00:00")))
    assert response.status_code == 303
    [imported] = owned(boss)
    assert imported["updated_at"].startswith("2024-03-01T10:00:00")


# --- the fuzz, on PostgreSQL --------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_world(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    if not postgres_server.running():
        postgres_server.start()
    url = postgres_server.create_database(f"fuzz_{os.getpid()}_{next(_databases)}")
    settings = fuzz_settings(tmp_path_factory.mktemp("pgfuzz"), database_url=url)
    server = LiveServer(create_app(settings, upstream_transport=FakeUpstream().transport()))
    server.start()
    opened = open_world(server)
    try:
        yield opened
    finally:
        opened.admin.close()
        opened.visitor.close()
        server.stop()


@pytest.mark.parametrize(
    "target",
    [t for t in ROUTES if (t.method, t.path) not in SIGNED_IN_ONLY_AS_VISITOR],
    ids=lambda t: t.name,
)
def test_signed_in_no_input_reaches_a_500_on_postgresql(pg_world: World, target: Target) -> None:
    admin = pg_world.admin
    fuzz(admin.http, target, pg_world.real_ids, pg_world.never, admin.csrf, EXAMPLES)
    assert admin.get("/chat").status_code == 200


@pytest.mark.parametrize("target", [t for t in ROUTES if t.public], ids=lambda t: t.name)
def test_anonymous_no_input_reaches_a_500_on_postgresql(pg_world: World, target: Target) -> None:
    fuzz(
        pg_world.visitor.http,
        target,
        pg_world.real_ids,
        pg_world.never,
        pg_world.visitor.csrf,
        EXAMPLES,
    )

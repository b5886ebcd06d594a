"""Every registered route, walked: anonymous callers are sent to sign in (pages) or get 401
(/v1); a member using another member's ids gets 404; a member on admin routes gets 403.

The routes come from the app itself, so a route added later is covered (or fails here until
it is put in one of the lists below)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from switchboard.accounts.services import create_user
from switchboard.chat import projects
from switchboard.chat.services import add_message, create_conversation
from switchboard.chat.tables import Message
from tests.conftest import mint_key_in
from tests.support.live import LiveServer
from tests.support.web_session import WebSession

PASSWORD = "a long enough password"
PUBLIC = {
    ("GET", "/"): "redirects to /signin or /chat",
    ("GET", "/signin"): "the sign-in page",
    ("POST", "/signin"): "signing in",
    ("POST", "/signout"): "signing out (harmless without a session)",
    ("GET", "/healthz"): "liveness probe",
    ("GET", "/readyz"): "readiness probe (status only for anonymous callers)",
    ("GET", "/metrics"): "loopback or the metrics token (tested in test_metrics.py)",
    ("GET", "/favicon.ico"): "the icon browsers ask for",
}
PUBLIC_PREFIXES = ("/static", "/docs", "/schema")
"""Static files and the OpenAPI schema."""


def routes(app: Any) -> list[tuple[str, str]]:
    found = []
    for route in app.all_routes:  # the workspace's and the API's
        for handler in getattr(route, "route_handlers", []):
            for method in sorted(getattr(handler, "http_methods", ())):
                if method not in ("HEAD", "OPTIONS"):
                    found.append((method, route.path))
    return sorted(set(found))


def fill(path: str, ids: dict[str, Any]) -> str:
    return re.sub(r"\{(\w+):\w+\}", lambda m: str(ids[m.group(1)]), path)


@pytest.fixture
def world(live_fake: LiveServer) -> dict[str, Any]:
    """Two members and an admin; bob owns a conversation with a message and a key."""

    async def build() -> dict[str, Any]:
        await create_user("alice", password=PASSWORD)
        bob = await create_user("bob", password=PASSWORD)
        await create_user("root", password=PASSWORD, role="admin")
        conversation = await create_conversation(int(bob.id), "fake-model")
        message = await add_message(conversation, "user", "bob's secret question")
        project = await projects.create(int(bob.id), "bob's secret project", "bob's secret")
        await mint_key_in(live_fake.app, "bob")
        return {
            "conversation_id": int(conversation.id),
            "project_id": int(project.id),
            "message_id": int(message.id),
            "key_id": 1,
            "user_id": int(bob.id),
            "model_id": "fake-model",
            "response_id": "resp_0123456789abcdef",
        }

    return {"ids": live_fake.run(build()), "server": live_fake}


def call(session: WebSession, method: str, path: str) -> Any:
    if method == "GET":
        return session.get(path)
    if method == "POST":
        return session.post(path, {})
    return session.http.request(method, path, headers={"x-csrftoken": session.csrf()})


def test_every_route_is_in_a_known_class(world: dict[str, Any]) -> None:
    server: LiveServer = world["server"]
    for method, path in routes(server.app):
        if (method, path) in PUBLIC or path.startswith(PUBLIC_PREFIXES):
            continue
        assert path.startswith(("/v1", "/chat", "/keys", "/usage", "/admin", "/account")), (
            f"{method} {path}: add it to a class in this test"
        )


def test_anonymous_callers_are_sent_to_sign_in_or_refused(world: dict[str, Any]) -> None:
    server: LiveServer = world["server"]
    checked = 0
    with WebSession(server.url) as anonymous:
        for method, template in routes(server.app):
            if (method, template) in PUBLIC or template.startswith(PUBLIC_PREFIXES):
                continue
            path = fill(template, world["ids"])
            response = call(anonymous, method, path)
            if template.startswith("/v1"):
                assert response.status_code == 401, (method, path, response.status_code)
                error = response.json()["error"]
                if template.startswith("/v1/messages"):  # Anthropic's shape
                    assert error["type"] == "authentication_error", (path, error)
                else:
                    assert error["code"] == "invalid_api_key", (path, error)
            else:
                assert response.status_code in (302, 303, 401), (method, path, response.status_code)
                if response.status_code != 401:
                    assert response.headers["location"].startswith("/signin"), (method, path)
            assert "bob's secret" not in response.text
            checked += 1
    assert checked >= 25


async def count_bobs_messages() -> int:
    return int(await Message.count().where(Message.content == "bob's secret question"))


def test_a_member_gets_404_on_another_members_ids(world: dict[str, Any]) -> None:
    server: LiveServer = world["server"]
    checked = 0
    with WebSession(server.url) as alice:
        assert alice.sign_in("alice", PASSWORD).status_code == 303
        for method, template in routes(server.app):
            owned = ("{conversation_id", "{message_id", "{key_id", "{project_id")
            if template.startswith("/admin") or not any(part in template for part in owned):
                continue
            response = call(alice, method, fill(template, world["ids"]))
            assert response.status_code == 404, (method, template, response.status_code)
            assert "bob's secret" not in response.text
            checked += 1
    assert checked >= 17
    # and nothing of bob's changed hands: his conversation, project and key are still there
    assert server.run(count_bobs_messages()) == 1
    bobs = server.run(projects.list_projects(world["ids"]["user_id"]))
    assert [p["name"] for p in bobs] == ["bob's secret project"]


def test_a_member_gets_403_on_admin_routes(world: dict[str, Any]) -> None:
    server: LiveServer = world["server"]
    checked = 0
    with WebSession(server.url) as alice:
        assert alice.sign_in("alice", PASSWORD).status_code == 303
        for method, template in routes(server.app):
            if not template.startswith("/admin"):
                continue
            response = call(alice, method, fill(template, world["ids"]))
            assert response.status_code == 403, (method, template, response.status_code)
            checked += 1
    assert checked >= 5

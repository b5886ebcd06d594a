"""Projects on a real PostgreSQL (the migration's table and foreign key, a 100-character name in
a varchar(100), NUL refused before the database sees it), in front of the fake model server, on
a fresh database for each test."""

from __future__ import annotations

import json

import pytest

from switchboard.accounts.services import create_user
from switchboard.chat.projects import MAX_NAME_CHARS
from tests.conftest import WebFactory
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer
from tests.support.web_session import WebSession
from tests.unit.test_projects import INSTRUCTIONS, create_project, new_chat_in, system_sent

pytestmark = pytest.mark.postgres

PASSWORD = "long-enough-password"  # pragma: allowlist secret


def signed_in(app: LiveServer, web: WebFactory, name: str) -> WebSession:
    app.run(create_user(name, password=PASSWORD))
    session = web(app.url)
    assert session.sign_in(name, PASSWORD).status_code == 303
    return session


def test_projects_on_postgres(
    pg_app: LiveServer, web: WebFactory, fake_upstream: FakeUpstream
) -> None:
    ada, bob = signed_in(pg_app, web, "ada"), signed_in(pg_app, web, "bob")
    project = create_project(ada, "é" * MAX_NAME_CHARS)  # characters, not bytes
    conversation = new_chat_in(ada, project)
    assert ada.post(f"/chat/{conversation}/messages", {"content": "hi"}).status_code == 303
    assert system_sent(fake_upstream) == INSTRUCTIONS
    for name in ("x" * (MAX_NAME_CHARS + 1), "nul\x00", ""):
        assert ada.post("/chat/projects", {"name": name}).status_code == 400, name
    assert bob.get(f"/chat/projects/{project}").status_code == 404
    assert bob.post(f"/chat/projects/{project}/delete").status_code == 404

    # export, then import into bob's account: the project and its conversation come along
    everything = json.loads(ada.get("/chat/export.json").text)
    upload = {"file": ("all.json", json.dumps(everything), "application/json")}
    imported = bob.http.post("/chat/import", files=upload, headers={"x-csrftoken": bob.csrf()})
    assert imported.status_code == 303
    mine = json.loads(bob.get("/chat/export.json").text)
    assert [p["name"] for p in mine["projects"]] == ["é" * MAX_NAME_CHARS]
    assert [c["project"] for c in mine["conversations"]] == ["é" * MAX_NAME_CHARS]

    # deleted keeping the conversation (moved out), then another with its conversation
    assert (
        ada.post(f"/chat/projects/{project}/delete", {"conversations": "keep"}).status_code == 303
    )
    assert ada.get(f"/chat/{conversation}").status_code == 200
    assert f'href="/chat/{conversation}"' in ada.get("/chat/list", htmx=True).text
    second = create_project(ada, "Second")
    inside = new_chat_in(ada, second)
    deleted = ada.post(f"/chat/projects/{second}/delete", {"conversations": "delete"})
    assert deleted.status_code == 303
    assert ada.get(f"/chat/{inside}").status_code == 404

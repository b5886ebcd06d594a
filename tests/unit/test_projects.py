"""Projects (issue 21, item 7): a user's group of conversations with shared instructions —
create, rename, edit the instructions, move a conversation in and out, delete (keeping or
deleting its conversations), scoped to their owner, and carried by export and import."""

from __future__ import annotations

import json
import re

import pytest

from switchboard.accounts.services import create_user
from switchboard.chat.projects import MAX_NAME_CHARS, system_prompt
from tests.conftest import WebFactory
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer
from tests.support.web_session import WebSession

INSTRUCTIONS = "Answer in French."
PASSWORD = "a long enough password"  # pragma: allowlist secret


@pytest.fixture
def ada(live_fake: LiveServer, web: WebFactory) -> WebSession:
    live_fake.run(create_user("ada", password=PASSWORD))
    live_fake.run(create_user("bob", password=PASSWORD))
    session = web(live_fake.url)
    assert session.sign_in("ada", PASSWORD).status_code == 303
    return session


@pytest.fixture
def bob(ada: WebSession, live_fake: LiveServer, web: WebFactory) -> WebSession:
    session = web(live_fake.url)
    assert session.sign_in("bob", PASSWORD).status_code == 303
    return session


def create_project(session: WebSession, name: str, instructions: str = INSTRUCTIONS) -> int:
    created = session.post("/chat/projects", {"name": name, "instructions": instructions})
    assert created.status_code == 303, created.text
    found = re.fullmatch(r"/chat/projects/(\d+)", created.headers["location"])
    assert found, created.headers["location"]
    return int(found.group(1))


def new_chat_in(session: WebSession, project: int, first: str = "salut") -> int:
    """A conversation started from the project page's message box (stored with its message)."""
    created = session.post("/chat/messages", {"content": first, "project": str(project)})
    assert created.status_code == 303, created.text
    return int(created.headers["location"].rsplit("/", 1)[1])


def system_sent(fake_upstream: FakeUpstream) -> str | None:
    first = fake_upstream.requests[-1]["messages"][0]
    return str(first["content"]) if first["role"] == "system" else None


def test_the_system_prompt_is_the_projects_instructions_then_the_conversations() -> None:
    assert system_prompt("Be brief.", "Speak like a pirate.") == (
        "Be brief.\n\nSpeak like a pirate."
    )
    assert system_prompt("Be brief.", "  ") == "Be brief."
    assert system_prompt("", "Speak like a pirate.") == "Speak like a pirate."
    assert system_prompt(" \n", "") == ""


def test_a_project_gives_its_instructions_to_every_conversation_in_it(
    ada: WebSession, fake_upstream: FakeUpstream
) -> None:
    project = create_project(ada, "French homework")
    page = ada.get(f"/chat/projects/{project}").text
    assert "French homework" in page
    assert INSTRUCTIONS in page
    conversation = new_chat_in(ada, project, "bonjour")
    assert system_sent(fake_upstream) == INSTRUCTIONS  # the first message is in the project
    # the conversation's own system prompt comes after the project's instructions
    ada.post(
        f"/chat/{conversation}/settings",
        {"system_prompt": "Use short words.", "temperature": "0.7", "max_tokens": "64"},
    )
    ada.post(f"/chat/{conversation}/messages", {"content": "encore"})
    assert system_sent(fake_upstream) == f"{INSTRUCTIONS}\n\nUse short words."
    # edited instructions apply to the next message; the project page lists the conversation
    edited = ada.post(
        f"/chat/projects/{project}/edit", {"name": "Devoirs", "instructions": "Be terse."}
    )
    assert edited.status_code == 303
    ada.post(f"/chat/{conversation}/messages", {"content": "encore une fois"})
    assert system_sent(fake_upstream) == "Be terse.\n\nUse short words."
    page = ada.get(f"/chat/projects/{project}").text
    assert "Devoirs" in page
    assert f'href="/chat/{conversation}"' in page
    # out of the project: only its own prompt again, and back in the main list
    moved = ada.post(f"/chat/{conversation}/project", {"project": ""})
    assert moved.status_code == 303
    ada.post(f"/chat/{conversation}/messages", {"content": "merci"})
    assert system_sent(fake_upstream) == "Use short words."
    assert f'href="/chat/{conversation}"' in ada.get("/chat/list", htmx=True).text


def test_conversations_move_in_and_are_listed_under_their_project(ada: WebSession) -> None:
    project = create_project(ada, "Garden")
    conversation = ada.new_conversation()
    ada.post(f"/chat/{conversation}/messages", {"content": "tomatoes"})
    assert f'href="/chat/{conversation}"' in ada.get("/chat/list", htmx=True).text
    moved = ada.post(f"/chat/{conversation}/project", {"project": str(project)})
    assert moved.status_code == 303
    # out of the main list, in the project's; a search still finds it
    assert f'href="/chat/{conversation}"' not in ada.get("/chat/list", htmx=True).text
    listed = ada.get(f"/chat/list?project={project}", htmx=True).text
    assert f'href="/chat/{conversation}"' in listed
    assert f'href="/chat/{conversation}"' in ada.get("/chat/list?q=tomatoes", htmx=True).text
    page = ada.get(f"/chat/{conversation}").text
    assert f'<option value="{project}" selected>Garden</option>' in page
    for bad in ("abc", "-1", str(2**40)):
        refused = ada.post(f"/chat/{conversation}/project", {"project": bad})
        assert refused.status_code in (400, 404), (bad, refused.status_code)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "Give the project a name"),
        ("   ", "Give the project a name"),
        ("x" * (MAX_NAME_CHARS + 1), f"at most {MAX_NAME_CHARS} characters"),
        ("nul\x00name", "NUL character"),
    ],
)
def test_bad_names_are_explained_never_a_500(ada: WebSession, name: str, problem: str) -> None:
    refused = ada.post("/chat/projects", {"name": name, "instructions": ""})
    assert refused.status_code == 400
    assert problem in refused.text
    in_place = ada.post("/chat/projects", {"name": name}, htmx=True)
    assert in_place.status_code in (200, 400)
    assert problem in in_place.text
    assert "<html" not in in_place.text or "NUL" in problem  # htmx gets a fragment
    project = create_project(ada, "Fine")
    edited = ada.post(f"/chat/projects/{project}/edit", {"name": name, "instructions": ""})
    assert edited.status_code == 400
    assert problem in edited.text


def test_names_are_unique_per_user_and_instructions_are_bounded(
    ada: WebSession, bob: WebSession
) -> None:
    create_project(ada, "Taxes")
    twice = ada.post("/chat/projects", {"name": " taxes ", "instructions": ""})
    assert twice.status_code == 400
    assert "already have a project named" in twice.text
    create_project(bob, "Taxes")  # another user may use the same name
    too_long = ada.post("/chat/projects", {"name": "Long", "instructions": "x" * 20_001})
    assert too_long.status_code == 400
    assert "20000 characters" in too_long.text


def test_created_from_the_sidebar_with_htmx(ada: WebSession) -> None:
    created = ada.post("/chat/projects", {"name": "Sidebar", "instructions": ""}, htmx=True)
    assert created.status_code == 200
    assert re.fullmatch(r"/chat/projects/\d+", created.headers["hx-redirect"])
    assert "Sidebar" in ada.get("/chat").text


def test_delete_keeps_or_deletes_the_conversations_as_chosen(ada: WebSession) -> None:
    kept_project = create_project(ada, "Keep them")
    kept = new_chat_in(ada, kept_project)
    refused = ada.post(f"/chat/projects/{kept_project}/delete", {"conversations": "maybe"})
    assert refused.status_code == 400
    deleted = ada.post(f"/chat/projects/{kept_project}/delete", {"conversations": "keep"})
    assert deleted.status_code == 303
    assert ada.get(f"/chat/projects/{kept_project}").status_code == 404
    assert ada.get(f"/chat/{kept}").status_code == 200  # kept, out of any project
    assert f'href="/chat/{kept}"' in ada.get("/chat/list", htmx=True).text

    gone_project = create_project(ada, "Delete them")
    gone = new_chat_in(ada, gone_project)
    deleted = ada.post(f"/chat/projects/{gone_project}/delete", {"conversations": "delete"})
    assert deleted.status_code == 303
    assert ada.get(f"/chat/{gone}").status_code == 404
    assert ada.get(f"/chat/{kept}").status_code == 200


def test_another_users_projects_look_missing(
    ada: WebSession, bob: WebSession, fake_upstream: FakeUpstream
) -> None:
    project = create_project(ada, "Ada secret project", "ada secret instructions")
    adas_chat = new_chat_in(ada, project)
    for path in ("", "/edit", "/new", "/delete"):
        if path:
            response = bob.post(f"/chat/projects/{project}{path}", {"name": "mine"})
        else:
            response = bob.get(f"/chat/projects/{project}")
        assert response.status_code == 404, (path, response.status_code)
        assert "secret" not in response.text
    assert bob.get(f"/chat/list?project={project}", htmx=True).status_code == 404
    # bob cannot move his conversation into ada's project, nor hers out of it
    his = bob.new_conversation()
    assert bob.post(f"/chat/{his}/project", {"project": str(project)}).status_code == 404
    assert bob.post(f"/chat/{adas_chat}/project", {"project": ""}).status_code == 404
    bob.post(f"/chat/{his}/messages", {"content": "hello"})
    assert system_sent(fake_upstream) is None
    assert "Ada secret project" not in bob.get("/chat").text
    assert "Ada secret project" in ada.get(f"/chat/projects/{project}").text


def test_export_and_import_carry_projects(ada: WebSession, bob: WebSession) -> None:
    project = create_project(ada, "Travel", "Plan trips on a budget.")
    inside = new_chat_in(ada, project)
    ada.post(f"/chat/{inside}/messages", {"content": "a week in Lisbon"})
    outside = ada.new_conversation()
    ada.post(f"/chat/{outside}/messages", {"content": "no project here"})
    everything = json.loads(ada.get("/chat/export.json").text)
    assert everything["version"] == 2
    [exported] = everything["projects"]
    assert (exported["name"], exported["instructions"]) == ("Travel", "Plan trips on a budget.")
    projects = [c.get("project") for c in everything["conversations"]]
    assert projects == ["Travel", None]
    one = json.loads(ada.get(f"/chat/{inside}/export.json").text)
    assert [p["name"] for p in one["projects"]] == ["Travel"]

    upload = {"file": ("conversations.json", json.dumps(everything), "application/json")}
    for _ in range(2):  # the second import reuses the project of the same name
        imported = bob.http.post("/chat/import", files=upload, headers={"x-csrftoken": bob.csrf()})
        assert imported.status_code == 303
    mine = json.loads(bob.get("/chat/export.json").text)
    assert [p["name"] for p in mine["projects"]] == ["Travel"]
    assert mine["projects"][0]["instructions"] == "Plan trips on a budget."
    assert [c.get("project") for c in mine["conversations"]] == ["Travel", None] * 2
    markdown = ada.get(f"/chat/{inside}/export.md").text
    assert "> Project: Travel" in markdown


def test_old_exports_without_projects_still_import(bob: WebSession) -> None:
    old = {
        "format": "switchboard.conversations",
        "version": 1,
        "conversations": [
            {"title": "From before projects", "messages": [{"role": "user", "content": "hi"}]}
        ],
    }
    upload = {"file": ("old.json", json.dumps(old), "application/json")}
    imported = bob.http.post("/chat/import", files=upload, headers={"x-csrftoken": bob.csrf()})
    assert imported.status_code == 303
    assert "From before projects" in bob.get("/chat/list", htmx=True).text


def test_imported_projects_are_checked(bob: WebSession) -> None:
    bad = {
        "format": "switchboard.conversations",
        "version": 2,
        "projects": [{"name": "x" * (MAX_NAME_CHARS + 1)}],
        "conversations": [],
    }
    upload = {"file": ("bad.json", json.dumps(bad), "application/json")}
    refused = bob.http.post("/chat/import", files=upload, headers={"x-csrftoken": bob.csrf()})
    assert refused.status_code == 400
    assert f"longer than {MAX_NAME_CHARS} characters" in refused.text


def test_project_forms_need_the_csrf_token(ada: WebSession) -> None:
    project = create_project(ada, "Guarded")
    conversation = ada.new_conversation()
    for path, form in (
        ("/chat/projects", {"name": "Forged"}),
        (f"/chat/projects/{project}/edit", {"name": "Forged"}),
        (f"/chat/projects/{project}/delete", {"conversations": "delete"}),
        (f"/chat/{conversation}/project", {"project": str(project)}),
    ):
        forged = ada.http.post(path, data=form)  # no token: as from another site's form
        assert forged.status_code == 403, (path, forged.status_code)
    assert "Guarded" in ada.get(f"/chat/projects/{project}").text
    assert "Forged" not in ada.get("/chat").text

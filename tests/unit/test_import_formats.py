"""Import from the formats people bring (issue 13, item 4): ChatGPT's conversations.json and Open
WebUI's JSON export, besides our own, with a report of what was imported and what was left out,
and the same caps for every format."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from switchboard.accounts.services import create_user
from switchboard.chat import import_formats
from tests.conftest import WebFactory
from tests.support.live import LiveServer
from tests.support.web_session import WebSession

MAY_2023 = 1_684_000_000.0


def node(
    node_id: str,
    role: str | None,
    parts: list[Any],
    parent: str | None,
    children: list[str],
    **metadata: Any,
) -> dict[str, Any]:
    message = None
    if role is not None:
        content = {"content_type": "text", "parts": parts}
        message = {
            "id": node_id,
            "author": {"role": role},
            "create_time": MAY_2023,
            "content": content,
            "metadata": metadata,
        }
    return {"id": node_id, "message": message, "parent": parent, "children": children}


def chatgpt_export() -> list[dict[str, Any]]:
    """One conversation with an edited question (two branches: the current one is kept), a
    hidden system message, an image beside text, a tool message; one with no text at all."""
    hidden = {"is_visually_hidden_from_conversation": True}
    picture = [{"content_type": "image_asset_pointer"}, "And this picture?"]
    mapping = {
        "root": node("root", None, [], None, ["sys"]),
        "sys": node("sys", "system", [""], "root", ["q1"], **hidden),
        "q1": node("q1", "user", ["What is 2+2?"], "sys", ["a1"]),
        "a1": node("a1", "assistant", ["4"], "q1", ["q2-old", "q2"]),
        "q2-old": node("q2-old", "user", ["an abandoned edit"], "a1", ["a2-old"]),
        "a2-old": node("a2-old", "assistant", ["abandoned"], "q2-old", []),
        "q2": node("q2", "user", picture, "a1", ["t2"]),
        "t2": node("t2", "tool", ["search results"], "q2", ["a2"]),
        "a2": node("a2", "assistant", ["A cat."], "t2", []),
    }
    return [
        {
            "title": "Arithmetic",
            "create_time": MAY_2023,
            "update_time": MAY_2023 + 60,
            "mapping": mapping,
            "current_node": "a2",
        },
        {
            "title": "Only a picture",
            "create_time": MAY_2023,
            "current_node": "x",
            "mapping": {"x": node("x", "user", [{"asset": 1}], None, [])},
        },
    ]


def openwebui_export() -> list[dict[str, Any]]:
    return [
        {
            "id": "c1",
            "title": "Open WebUI chat",
            "updated_at": 1_700_000_000,
            "chat": {
                "title": "ignored",
                "messages": [
                    {"role": "system", "content": "be brief", "timestamp": 1_700_000_000},
                    {"role": "user", "content": "Hi there", "timestamp": 1_700_000_000},
                    {"role": "assistant", "content": "Hello!", "timestamp": 1_700_000_001},
                    {"role": "user", "content": "", "timestamp": 1_700_000_002},
                ],
            },
        }
    ]


@pytest.fixture
def ada(live_fake: LiveServer, web: WebFactory) -> WebSession:
    live_fake.run(create_user("ada", password="ada-password"))  # pragma: allowlist secret
    session = web(live_fake.url)
    assert session.sign_in("ada", "ada-password").status_code == 303
    return session


def upload(session: WebSession, body: str, *, htmx: bool = True) -> httpx.Response:
    files = {"file": ("conversations.json", body, "application/json")}
    headers = {"x-csrftoken": session.csrf()}
    if htmx:
        headers["hx-request"] = "true"
    return session.http.post("/chat/import", files=files, headers=headers)


def exported(session: WebSession) -> list[dict[str, Any]]:
    conversations: list[dict[str, Any]] = json.loads(session.get("/chat/export.json").text)[
        "conversations"
    ]
    return conversations


def test_chatgpt_follows_the_current_branch_and_reports_what_it_left_out(
    ada: WebSession,
) -> None:
    response = upload(ada, json.dumps(chatgpt_export()))
    assert response.status_code == 200, response.text
    report = response.text
    assert "Imported 1 conversation with 4 messages from ChatGPT." in report
    assert "1 conversation skipped: no text messages." in report
    assert "1 message skipped: tool messages (tools, system)." in report
    assert "2 attachments (images, files) left out: only text is imported." in report
    assert response.headers["hx-trigger"] == "conversations-changed"
    [conversation] = exported(ada)
    assert conversation["title"] == "Arithmetic"
    assert [(m["role"], m["content"]) for m in conversation["messages"]] == [
        ("user", "What is 2+2?"),
        ("assistant", "4"),
        ("user", "And this picture?"),
        ("assistant", "A cat."),
    ]
    assert conversation["updated_at"].startswith("2023-05-13")  # dated as in ChatGPT
    listed = ada.get("/chat/list", htmx=True).text
    assert re.search(r"<h2>Older</h2>\s*</li>\s*<li class=\"item\"><a[^>]*>Arithmetic", listed)


def test_open_webui_chats_are_imported_with_a_report(ada: WebSession) -> None:
    response = upload(ada, json.dumps(openwebui_export()))
    assert response.status_code == 200, response.text
    assert "Imported 1 conversation with 2 messages from Open WebUI." in response.text
    assert "1 message skipped: system messages (tools, system)." in response.text
    assert "1 message skipped: empty messages." in response.text
    [conversation] = exported(ada)
    assert conversation["title"] == "Open WebUI chat"
    assert [m["content"] for m in conversation["messages"]] == ["Hi there", "Hello!"]


def test_our_own_export_still_imports_and_nothing_is_left_out(ada: WebSession) -> None:
    ours = {
        "format": "switchboard.conversations",
        "version": 1,
        "conversations": [{"title": "Ours", "messages": [{"role": "user", "content": "x"}]}],
    }
    response = upload(ada, json.dumps(ours))
    assert "Imported 1 conversation with 1 message from Switchboard." in response.text
    assert "Nothing was left out." in response.text
    assert upload(ada, json.dumps(ours), htmx=False).status_code == 303  # without JS: the list


def test_the_caps_hold_for_every_format(ada: WebSession) -> None:
    many = [
        {
            "title": f"c{n}",
            "mapping": {"a": node("a", "user", ["hi"], None, [])},
            "current_node": "a",
        }
        for n in range(501)
    ]
    refused = upload(ada, json.dumps(many))
    assert "At most 500 conversations per import (this file has 501)." in refused.text
    messages = [{"role": "user", "content": "hi"}] * 2001
    refused = upload(ada, json.dumps([{"title": "long", "chat": {"messages": messages}}]))
    assert "Conversation 1 has more than 2000 messages." in refused.text
    long_title = [{"title": "t" * 201, "chat": {"messages": [{"role": "user", "content": "x"}]}}]
    assert "the title is longer than 200 characters" in upload(ada, json.dumps(long_title)).text
    assert exported(ada) == []  # nothing of a refused file


@pytest.mark.parametrize(
    "body", ['{"some": "json"}', "[1, 2]", '[{"mapping": "no"}]', "nope", '{"format": 1}']
)
def test_files_of_no_known_format_are_explained_not_a_500(ada: WebSession, body: str) -> None:
    plain = upload(ada, body, htmx=False)
    assert plain.status_code == 400, plain.text
    assert "not an export we can read" in plain.text or "not JSON" in plain.text
    in_place = upload(ada, body)
    assert in_place.status_code == 200
    assert 'class="error" role="alert"' in in_place.text


def test_cycles_and_dangling_links_in_a_chatgpt_tree_end_the_branch() -> None:
    mapping = {
        "a": node("a", "user", ["one"], "b", ["b"]),
        "b": node("b", "assistant", ["two"], "a", ["a"]),  # a cycle
    }
    export, _ = import_formats.convert(
        [{"title": "loop", "mapping": mapping, "current_node": "b"}], "chatgpt"
    )
    assert [m.content for m in export.conversations[0].messages] == ["one", "two"]
    dangling = {"a": node("a", "user", ["hi"], None, ["missing"])}
    export, _ = import_formats.convert([{"title": "d", "mapping": dangling}], "chatgpt")
    assert [m.content for m in export.conversations[0].messages] == ["hi"]

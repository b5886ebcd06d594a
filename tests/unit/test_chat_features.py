"""Conversation settings, regenerate, edit-and-resend, export and import."""

from __future__ import annotations

import json

import pytest

from switchboard.accounts.services import create_user
from tests.conftest import WebFactory
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer
from tests.support.web_session import WebSession


@pytest.fixture
def ada(live_fake: LiveServer, web: WebFactory) -> WebSession:
    live_fake.run(create_user("ada", password="ada-password"))
    live_fake.run(create_user("bob", password="bob-password"))
    session = web(live_fake.url)
    assert session.sign_in("ada", "ada-password").status_code == 303
    return session


def chat_with_one_exchange(session: WebSession, text: str = "first question") -> int:
    conversation = session.new_conversation()
    assert session.post(f"/chat/{conversation}/messages", {"content": text}).status_code == 303
    return conversation


def test_settings_reach_the_model_and_bad_values_are_explained(
    ada: WebSession, fake_upstream: FakeUpstream
) -> None:
    conversation = ada.new_conversation()
    saved = ada.post(
        f"/chat/{conversation}/settings",
        {
            "system_prompt": "Answer like a pirate.",
            "model": "fake-model",
            "temperature": "0.2",
            "max_tokens": "64",
        },
    )
    assert saved.status_code == 303
    ada.post(f"/chat/{conversation}/messages", {"content": "hello there"})
    sent = fake_upstream.requests[-1]
    assert sent["messages"][0] == {"role": "system", "content": "Answer like a pirate."}
    assert (sent["temperature"], sent["max_tokens"]) == (0.2, 64)
    bad = ada.post(
        f"/chat/{conversation}/settings",
        {"temperature": "hot", "max_tokens": "999999", "model": "gpt-x"},
    )
    assert bad.status_code == 400
    for problem in ("Temperature is a number", "Max tokens is a whole number", "Unknown model"):
        assert problem in bad.text


def test_regenerate_and_edit_answer_again(ada: WebSession, fake_upstream: FakeUpstream) -> None:
    conversation = chat_with_one_exchange(ada, "alpha beta")
    assert ada.post(f"/chat/{conversation}/regenerate").status_code == 303
    page = ada.get(f"/chat/{conversation}").text
    assert page.count('class="message user') == 1
    assert page.count('class="message assistant') == 1
    assert len(fake_upstream.requests) == 2
    assert ada.post(f"/chat/{conversation}/edit", {"content": "gamma delta"}).status_code == 303
    assert fake_upstream.requests[-1]["messages"][-1] == {"role": "user", "content": "gamma delta"}
    page = ada.get(f"/chat/{conversation}").text
    assert "gamma delta" in page
    assert "alpha beta" not in page.split('id="messages"')[1]  # the title keeps it
    fresh = ada.new_conversation()
    assert ada.post(f"/chat/{fresh}/regenerate").status_code == 400


def test_export_and_import_round_trip(
    ada: WebSession, live_fake: LiveServer, web: WebFactory
) -> None:
    conversation = chat_with_one_exchange(ada, "export me please")
    markdown = ada.get(f"/chat/{conversation}/export.md")
    assert markdown.headers["content-disposition"].startswith("attachment")
    assert "## You\n\nexport me please" in markdown.text
    one = json.loads(ada.get(f"/chat/{conversation}/export.json").text)
    everything = json.loads(ada.get("/chat/export.json").text)
    assert one["format"] == everything["format"] == "switchboard.conversations"
    assert [m["role"] for m in one["conversations"][0]["messages"]] == ["user", "assistant"]

    bob = web(live_fake.url)
    assert bob.sign_in("bob", "bob-password").status_code == 303
    assert bob.get(f"/chat/{conversation}/export.json").status_code == 404
    upload = {"file": ("conversations.json", json.dumps(everything), "application/json")}
    imported = bob.http.post("/chat/import", files=upload, headers={"x-csrftoken": bob.csrf()})
    assert imported.status_code == 303
    mine = json.loads(bob.get("/chat/export.json").text)["conversations"]
    assert next(m["content"] for m in mine[0]["messages"]) == "export me please"
    garbage = {"file": ("x.json", "{not json", "application/json")}
    refused = bob.http.post("/chat/import", files=garbage, headers={"x-csrftoken": bob.csrf()})
    assert refused.status_code == 400
    assert "not JSON" in refused.text

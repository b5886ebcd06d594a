"""Titles written by the model after a conversation's first answer (issue 21, item 6), against
the fake model: what it is asked, what is kept of its answer, and when the first message's
title stays (a rename meanwhile, a failure, nothing usable)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from switchboard.accounts.services import create_user
from switchboard.app import create_app
from switchboard.chat.services import title_from
from switchboard.chat.tables import Conversation
from switchboard.chat.titles import MAX_CHARS, MAX_TOKENS, clean_title
from tests.conftest import SettingsFactory, WebFactory
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer
from tests.support.waiting import wait_for
from tests.support.web_session import WebSession

PASSWORD = "ada's password"  # pragma: allowlist secret

QUESTION = "How far away is the moon from the earth, and how long does light take to cross it?"


@dataclass
class TitlingUpstream(FakeUpstream):
    """Echoes a chat's question (streamed); answers a title request (not streamed) with
    ``title``, or fails it with ``title_status``; ``rename_to`` renames the conversation while
    the title is being written."""

    title: str = 'Title: "Moon distance and light."\nThis conversation is about the moon.'
    title_status: int = 200
    rename_to: str = ""
    finish_reason: str = "stop"

    async def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.method == "POST" else {}
        if request.url.path != "/v1/chat/completions" or body.get("stream"):
            return await super().handle(request)
        self.requests.append(body)
        if self.rename_to:
            await Conversation.update({Conversation.title: self.rename_to}).where(
                Conversation.id > 0
            )
        if self.title_status != 200:
            return httpx.Response(self.title_status, json={"error": {"message": "down"}})
        message = {"role": "assistant", "content": self.title}
        choice = {"index": 0, "message": message, "finish_reason": self.finish_reason}
        usage = {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
        answer = {"id": "t", "object": "chat.completion", "created": 1, "model": body["model"]}
        return httpx.Response(200, json={**answer, "choices": [choice], "usage": usage})


@pytest.fixture
def fake_upstream() -> TitlingUpstream:
    return TitlingUpstream()


@pytest.fixture
def live_fake(
    make_settings: SettingsFactory, fake_upstream: TitlingUpstream
) -> Iterator[LiveServer]:
    """The app in front of the fake model, with titles on (as in production)."""
    app = create_app(
        make_settings(chat_titles="true"), upstream_transport=fake_upstream.transport()
    )
    server = LiveServer(app).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ada(live_fake: LiveServer, web: WebFactory) -> WebSession:
    live_fake.run(create_user("ada", password=PASSWORD))
    session = web(live_fake.url)
    assert session.sign_in("ada", PASSWORD).status_code == 303
    return session


def title_of(session: WebSession, conversation: int) -> str:
    exported = json.loads(session.get(f"/chat/{conversation}/export.json").text)
    return str(exported["conversations"][0]["title"])


def ask(session: WebSession, conversation: int, text: str = QUESTION) -> None:
    assert session.post(f"/chat/{conversation}/messages", {"content": text}).status_code == 303


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ("Moon facts", "Moon facts"),
        ('"Moon facts"', "Moon facts"),
        ("Title: “Moon facts.”", "Moon facts"),
        ("**Moon Facts**\n\nThe moon is a satellite.", "Moon Facts"),
        ("\n\n  # Moon   facts  \nmore", "Moon facts"),
        ("- Moon facts:", "Moon facts"),
        ("Conversation title - The 'Moon' facts", "The 'Moon' facts"),
        ("Is the moon far?", "Is the moon far?"),
        ("`Moon`\x00 facts", "Moon facts"),
        ("", ""),
        ('  ""  \n\n', ""),
        ("...", ""),
    ],
)
def test_a_written_title_is_cleaned(written: str, kept: str) -> None:
    assert clean_title(written) == kept


def test_a_long_title_is_cut_at_a_word() -> None:
    long = "The distance between the earth and the moon measured by lasers over many decades"
    cut = clean_title(long)
    assert len(cut) <= MAX_CHARS
    assert long.startswith(cut)
    assert long[len(cut)] == " "  # at a word boundary
    assert len(clean_title("x" * 200)) == MAX_CHARS  # one endless word: cut anyway


def test_the_first_answer_brings_a_title_from_the_model(
    ada: WebSession, fake_upstream: TitlingUpstream
) -> None:
    conversation = ada.new_conversation()
    ask(ada, conversation)
    assert title_of(ada, conversation) == "Moon distance and light"
    asked = fake_upstream.requests[-1]
    assert not asked.get("stream")
    assert (asked["temperature"], asked["max_tokens"]) == (0.0, MAX_TOKENS)
    assert asked["model"] == "fake-model"
    assert QUESTION in asked["messages"][-1]["content"]
    # counted like any chat request: two requests in the person's usage
    wait_for(
        lambda: "Last 30 days: <strong>2</strong> requests" in ada.get("/usage").text,
        "the title request counted in the usage",
    )
    # only after the first answer: a second exchange asks for no other title
    before = len(fake_upstream.requests)
    ask(ada, conversation, "and the sun?")
    assert len(fake_upstream.requests) == before + 1
    assert title_of(ada, conversation) == "Moon distance and light"
    # still editable
    assert ada.post(f"/chat/{conversation}/rename", {"title": "Mine"}).status_code == 303
    assert title_of(ada, conversation) == "Mine"


def test_the_title_reaches_the_page_with_the_done_event(
    ada: WebSession, fake_upstream: TitlingUpstream
) -> None:
    conversation = ada.new_conversation()
    sent = ada.post(f"/chat/{conversation}/messages", {"content": QUESTION}, htmx=True)
    assert sent.status_code == 200
    message = int(sent.text.split('id="message-')[-1].split('"')[0])
    events = ada.stream_events(f"/chat/{conversation}/messages/{message}/stream")
    done = dict(events)["done"]
    assert 'value="Moon distance and light"' in done  # the title field
    assert f'id="conversation-link-{conversation}"' in done  # the sidebar's link
    assert "<title>Moon distance and light · Switchboard</title>" in done


def test_a_rename_while_the_model_writes_wins(
    ada: WebSession, fake_upstream: TitlingUpstream
) -> None:
    fake_upstream.rename_to = "Renamed by hand"
    conversation = ada.new_conversation()
    ask(ada, conversation)
    assert title_of(ada, conversation) == "Renamed by hand"


def test_a_renamed_conversation_is_not_titled(
    ada: WebSession, fake_upstream: TitlingUpstream
) -> None:
    conversation = ada.new_conversation()
    ada.post(f"/chat/{conversation}/rename", {"title": "Before asking"})
    ask(ada, conversation)
    assert title_of(ada, conversation) == "Before asking"
    assert all(r.get("stream") for r in fake_upstream.requests)  # the model was not asked


@pytest.mark.parametrize("failure", ["status", "empty"])
def test_without_a_usable_title_the_first_message_names_it(
    ada: WebSession, fake_upstream: TitlingUpstream, failure: str
) -> None:
    if failure == "status":
        fake_upstream.title_status = 503
    else:
        fake_upstream.title = '""'
    conversation = ada.new_conversation()
    ask(ada, conversation)
    assert title_of(ada, conversation) == title_from(QUESTION)
    page = ada.get(f"/chat/{conversation}").text
    assert 'class="message assistant complete' in page
    messages = page.split('id="messages"')[1].split('id="composer"')[0]
    assert 'role="alert"' not in messages  # no error shown
    assert 'class="toast"' not in page
    assert not fake_upstream.requests[-1].get("stream")  # it was asked


def test_titles_can_be_turned_off(
    make_settings: SettingsFactory, fake_upstream: TitlingUpstream, web: WebFactory
) -> None:
    app = create_app(
        make_settings(chat_titles="false"), upstream_transport=fake_upstream.transport()
    )
    server = LiveServer(app).start()
    try:
        server.run(create_user("ada", password=PASSWORD))
        session = web(server.url)
        session.sign_in("ada", PASSWORD)
        conversation = session.new_conversation()
        ask(session, conversation)
        assert title_of(session, conversation) == title_from(QUESTION)
        assert len(fake_upstream.requests) == 1
    finally:
        server.stop()


def test_a_title_cut_by_its_token_limit_loses_its_unfinished_word(
    ada: WebSession, fake_upstream: TitlingUpstream
) -> None:
    fake_upstream.title, fake_upstream.finish_reason = (
        "The moon in three sentences: A simpl",
        "length",
    )
    conversation = ada.new_conversation()
    ask(ada, conversation)
    assert title_of(ada, conversation) == "The moon in three sentences: A"

"""Answers generated apart from the pages that show them (issue 26; issue 21, item 4): a
conversation stored with its first message, an answer that goes on when its stream is closed,
Stop that ends it at once and is recorded as answered (not as an error), and how pages follow a
generation in process."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from switchboard.accounts.services import create_user
from switchboard.chat import markdown, services
from switchboard.chat.generations import Generation
from switchboard.chat.markdown import StreamingMarkdown, render_markdown
from switchboard.chat.streaming import generate
from switchboard.chat.tables import Conversation, Message
from switchboard.resources import open_resources
from switchboard.usage.tables import UsageRecord
from tests.conftest import SettingsFactory, WebFactory
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer
from tests.support.markdown_upstream import MarkdownUpstream
from tests.support.waiting import wait_for, wait_for_async
from tests.support.web_session import WebSession

WORDS = " ".join(f"word{n}" for n in range(200))
DEADLINE = 60.0
"""Seconds to wait for something that happens at once when the code is right."""


@pytest.fixture
def fake_upstream() -> FakeUpstream:
    return MarkdownUpstream()


@pytest.fixture
def ada(live_fake: LiveServer, web: WebFactory) -> WebSession:
    live_fake.run(create_user("ada", password="ada-password"))  # pragma: allowlist secret
    session = web(live_fake.url)
    assert session.sign_in("ada", "ada-password").status_code == 303
    return session


async def _query(query: Any) -> Any:
    return await query


def start(session: WebSession, text: str) -> tuple[int, str, str]:
    """The first message, as the page's message box sends it: the new conversation, the paths
    of its answer's stream and Stop."""
    sent = session.post("/chat/messages", {"content": text}, htmx=True)
    assert sent.status_code == 200, sent.text
    pushed = sent.headers["hx-push-url"]
    assert re.fullmatch(r"/chat/\d+", pushed)
    stream = re.search(r'sse-connect="([^"]+/stream)"', sent.text)
    stop = re.search(r'hx-post="([^"]+/stop)"', sent.text)
    assert stream is not None
    assert stop is not None
    return int(pushed.rsplit("/", 1)[1]), stream.group(1), stop.group(1)


def answer_of(server: LiveServer, conversation: int) -> dict[str, Any]:
    row: dict[str, Any] = server.run(
        _query(
            Message.select(Message.status, Message.content)
            .where((Message.conversation == conversation) & (Message.role == "assistant"))
            .first()
        )
    )
    return row


def web_statuses(server: LiveServer) -> list[int]:
    rows = server.run(_query(UsageRecord.select(UsageRecord.status)))
    return [int(r["status"]) for r in rows]


def test_a_conversation_is_stored_with_its_first_message_and_nothing_before(
    ada: WebSession, live_fake: LiveServer
) -> None:
    assert "No conversations yet." in ada.get("/chat").text
    assert 'id="content"' in ada.get("/chat").text  # the message box, on arrival
    refused = ada.post("/chat/messages", {"content": "   "}, htmx=True)
    assert refused.status_code == 400
    assert "Type a message first." in refused.text
    unknown = ada.post("/chat/messages", {"content": "hi", "model": "gpt-x"}, htmx=True)
    assert unknown.status_code == 400
    assert live_fake.run(_query(Conversation.count())) == 0  # nothing stored for them

    conversation, stream, _ = start(ada, "Plan a picnic")
    assert ada.stream_events(stream)[-1][0] == "done"
    rows = live_fake.run(
        _query(Conversation.select(Conversation.id, Conversation.title, Conversation.user))
    )
    assert [(r["id"], r["title"]) for r in rows] == [(conversation, "Plan a picnic")]
    assert answer_of(live_fake, conversation)["status"] == "complete"

    # an empty conversation (made by a script): its first message sends the new title along
    empty = ada.new_conversation()
    sent = ada.post(f"/chat/{empty}/messages", {"content": "Name this one"}, htmx=True)
    title = re.search(r'<input id="title"[^>]*>', sent.text)
    assert title is not None
    assert 'hx-swap-oob="true"' in title.group(0)
    assert 'value="Name this one"' in title.group(0)
    assert sent.headers["hx-trigger"] == "conversations-changed"
    again = ada.post(f"/chat/{empty}/messages", {"content": "And another"}, htmx=True)
    assert 'id="title"' not in again.text  # titled already: nothing to change

    # without JavaScript: stored, answered, then the conversation's page
    plain = ada.post("/chat/messages", {"content": "No script here"})
    assert plain.status_code == 303
    page = ada.get(plain.headers["location"]).text
    assert "No script here" in page
    assert 'class="message assistant complete"' in page


def test_an_answer_goes_on_when_its_stream_is_closed(
    ada: WebSession, live_fake: LiveServer, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.chunk_delay = 0.01
    conversation, stream, _ = start(ada, WORDS)
    with ada.http.stream("GET", stream) as response:
        for line in response.iter_lines():
            if line == "event: partial":
                break  # the page goes away once the answer has begun
    wait_for(
        lambda: answer_of(live_fake, conversation)["status"] == "complete",
        lambda: str(answer_of(live_fake, conversation)),
    )
    assert answer_of(live_fake, conversation)["content"].strip() == WORDS
    wait_for(lambda: web_statuses(live_fake), "the usage row")
    assert web_statuses(live_fake) == [200]


def test_stop_ends_the_answer_at_once_and_it_is_not_an_error(
    ada: WebSession, live_fake: LiveServer, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.chunk_delay = 0.05  # 10 s: stopped long before its end
    conversation, stream, stop = start(ada, WORDS)
    events: list[str] = []
    with ada.http.stream("GET", stream) as response:
        for line in response.iter_lines():
            events.append(line)
            if line == "event: partial" and events.count(line) == 1:
                assert ada.post(stop).status_code == 204
            if line == "event: done":
                break
    row = answer_of(live_fake, conversation)
    assert row["status"] == "stopped"
    assert row["content"].startswith("word0")
    assert row["content"] != WORDS
    wait_for(lambda: web_statuses(live_fake), "the usage row")
    assert web_statuses(live_fake) == [200]  # stopped on purpose: answered, not an abort (499)


async def test_followers_see_the_answer_grow_and_end() -> None:
    generation = Generation(1)
    first: list[str] = []
    late: list[str] = []

    async def follow(into: list[str], joined: int | None) -> None:
        async for text in generation.follow(joined):
            into.append(text)

    asker = asyncio.create_task(follow(first, 0))
    await asyncio.sleep(0)
    generation.grow("one")
    generation.grow(" two")  # before the asker ran: it still sees the first piece alone first
    await asyncio.sleep(0)
    joiner = asyncio.create_task(follow(late, None))
    await asyncio.sleep(0)
    generation.grow(" three")
    generation.finish()
    await asyncio.wait_for(asyncio.gather(asker, joiner), 10)
    assert first[0] == "one"
    assert first[-1] == "one two three"
    assert late[0] == "one two"  # what there was when it joined, then the rest
    assert late[-1] == "one two three"


async def test_shutdown_ends_an_answer_still_written_as_stopped_and_records_it(
    make_settings: SettingsFactory, fake_upstream: FakeUpstream
) -> None:
    settings = make_settings(shutdown_grace=0.5)
    fake_upstream.chunk_delay = 3600  # it will not finish by itself

    async def serve_then_shut_down() -> int:
        async with open_resources(settings, fake_upstream.transport()) as resources:
            user = await create_user("sam", password="sam-password")  # pragma: allowlist secret
            conversation = await services.start_conversation(int(user.id), "fake-model", "hi")
            reply = await services.add_message(conversation, "assistant", "", status="streaming")

            async def job(generation: Generation) -> None:
                await generate(resources.gateway, user, conversation, generation, "at-shutdown")

            generation, started = await resources.generations.attach(int(reply.id), job)
            assert started
            assert generation is not None
            gateway = resources.gateway
            # its stream is open (the model sends nothing yet) as the shutdown begins
            await wait_for_async(lambda: _true(gateway.in_flight.count == 1), "the stream")
            return int(reply.id)

    message_id = await asyncio.wait_for(serve_then_shut_down(), DEADLINE)
    path = settings.resolved_database_url.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(path)) as database:
        status, content = database.execute(
            "SELECT status, content FROM messages WHERE id = ?", (message_id,)
        ).fetchone()
        rows = database.execute("SELECT request_id, status FROM usage_records").fetchall()
    assert (status, content) == ("stopped", "")  # ended, not left "generating" for ever
    assert rows == [("at-shutdown", 503)]  # cut by the stopping gateway, as /v1 streams are


async def _true(value: bool) -> bool:
    return value


ANSWER = """Here is **some** text that spans
two lines.

```python
def add(a, b):

    return a + b
```

- one
- two

  still two

| a | b |
|---|---|
| 1 | 2 |

> quoted
continued

Last paragraph with `code` and a [link](https://example.com).
"""


def test_a_growing_answer_is_rendered_incrementally_and_ends_as_rendered_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for step in (1, 5):  # piece by piece, the result is the whole text's render
        streamed = StreamingMarkdown()
        for end in range(1, len(ANSWER), step):
            streamed.render(ANSWER[:end])
        assert streamed.render(ANSWER) == render_markdown(ANSWER)

    rendered: list[int] = []  # the length of each text rendered
    whole = render_markdown

    def counted(text: str) -> str:
        rendered.append(len(text))
        return whole(text)

    monkeypatch.setattr(markdown, "render_markdown", counted)
    long_answer = "\n\n".join(f"Paragraph {n} of a long answer." for n in range(60))
    streamed = StreamingMarkdown()
    for end in range(1, len(long_answer) + 1):
        streamed.render(long_answer[:end])
    # each closed paragraph once, then only the last one again: not the whole answer each time
    assert max(rendered) < 100
    assert sum(rendered) < 50 * len(long_answer)


def test_answering_again_stops_the_answer_still_written(
    ada: WebSession, live_fake: LiveServer, fake_upstream: FakeUpstream
) -> None:
    hold = fake_upstream.hold = threading.Event()  # the first answer waits for the model
    conversation, stream, _ = start(ada, "first try")
    with ThreadPoolExecutor(1) as thread:
        try:
            followed = thread.submit(ada.stream_events, stream)
            wait_for(lambda: len(fake_upstream.requests) == 1, "the first answer's request")
            again = ada.post(f"/chat/{conversation}/regenerate", htmx=True)
            assert again.status_code == 200
            # the page that followed the first answer sees it end: stopped, or already gone
            # (an empty "done"), as its deletion and the follower's last look fall
            [(kind, shown)] = followed.result(timeout=DEADLINE)
            assert kind == "done"
            assert shown == "" or '<p class="badge">Stopped</p>' in shown, shown
        finally:
            hold.set()
    second = re.search(r'sse-connect="([^"]+/stream)"', again.text)
    assert second is not None
    fake_upstream.hold = None
    assert ada.stream_events(second.group(1))[-1][0] == "done"
    rows = live_fake.run(
        _query(
            Message.select(Message.role, Message.status).where(Message.conversation == conversation)
        )
    )
    assert [(r["role"], r["status"]) for r in rows] == [
        ("user", "complete"),
        ("assistant", "complete"),
    ]
    wait_for(lambda: len(web_statuses(live_fake)) == 2, "both usage rows")
    assert web_statuses(live_fake) == [200, 200]  # the first one stopped on purpose


def test_deleting_a_conversation_stops_its_answer_first(
    ada: WebSession, live_fake: LiveServer, fake_upstream: FakeUpstream
) -> None:
    """Nothing writes on for a deleted conversation (SQLite would give the next answer the
    deleted one's id, and the late write would land there)."""
    hold = fake_upstream.hold = threading.Event()  # the answer waits for the model
    conversation, stream, _ = start(ada, "first try")
    with ThreadPoolExecutor(1) as thread:
        try:
            followed = thread.submit(ada.stream_events, stream)
            wait_for(lambda: len(fake_upstream.requests) == 1, "the answer's request")
            assert ada.post(f"/chat/{conversation}/delete").status_code == 303
            # stopped by the deletion, not by the model finishing (it is still held)
            [(kind, _)] = followed.result(timeout=DEADLINE)
            assert kind == "done"
        finally:
            hold.set()
    fake_upstream.hold = None
    wait_for(lambda: len(web_statuses(live_fake)) == 1, "its usage row")
    assert web_statuses(live_fake) == [200]  # stopped on purpose: answered, not an abort
    assert_next_answer_is_alone(ada, live_fake)


def assert_next_answer_is_alone(ada: WebSession, live_fake: LiveServer) -> None:
    """A new conversation's answer completes, and its two messages are the only rows: nothing
    of the deleted one was written late onto the reused ids."""
    _, second, _ = start(ada, "second try")
    assert ada.stream_events(second)[-1][0] == "done"
    rows = live_fake.run(_query(Message.select(Message.role, Message.status)))
    assert [(r["role"], r["status"]) for r in rows] == [
        ("user", "complete"),
        ("assistant", "complete"),
    ]


def test_deleting_a_project_with_its_conversations_stops_their_answers_first(
    ada: WebSession, live_fake: LiveServer, fake_upstream: FakeUpstream
) -> None:
    """As for one conversation: nothing writes on for a conversation deleted with its
    project (the late write would land on the next answer's reused id)."""
    created = ada.post("/chat/projects", {"name": "Doomed", "instructions": ""})
    assert created.status_code == 303, created.text
    project = int(created.headers["location"].rsplit("/", 1)[1])
    hold = fake_upstream.hold = threading.Event()  # the answer waits for the model
    conversation, stream, _ = start(ada, "first try")
    moved = ada.post(f"/chat/{conversation}/project", {"project": str(project)})
    assert moved.status_code == 303, moved.text
    with ThreadPoolExecutor(1) as thread:
        try:
            followed = thread.submit(ada.stream_events, stream)
            wait_for(lambda: len(fake_upstream.requests) == 1, "the answer's request")
            deleted = ada.post(f"/chat/projects/{project}/delete", {"conversations": "delete"})
            assert deleted.status_code == 303, deleted.text
            # stopped by the deletion, not by the model finishing (it is still held)
            [(kind, _)] = followed.result(timeout=DEADLINE)
            assert kind == "done"
        finally:
            hold.set()
    fake_upstream.hold = None
    assert ada.get(f"/chat/{conversation}").status_code == 404
    wait_for(lambda: len(web_statuses(live_fake)) == 1, "its usage row")
    assert_next_answer_is_alone(ada, live_fake)

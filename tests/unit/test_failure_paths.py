"""Failure paths around the gateway: a stream that breaks off in the chat, a second request for a
reply being generated, a usage buffer that cannot flush, and key last-used times.

Shutdown with a stream in flight is in test_shutdown_drain.py.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from litestar import Litestar, get
from litestar.exceptions import InternalServerException
from litestar.response import Stream
from litestar.testing import AsyncTestClient, TestClient
from prometheus_client import REGISTRY

from switchboard.accounts.services import create_user
from switchboard.chat import controllers as chat_controllers
from switchboard.gateway.errors import as_gateway_error
from switchboard.keys.services import KeyService
from switchboard.keys.tables import ApiKey
from switchboard.usage.tables import UsageRecord
from switchboard.usage.writer import UsageEvent, UsageWriter
from switchboard.web.errors import exception_handler
from tests.conftest import WebFactory, mint_key
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer
from tests.support.web_session import WebSession

CHAT = "/v1/chat/completions"
DEADLINE = 120.0
"""Seconds to wait for something that happens at once when the code is right."""


def usage_event(request_id: str) -> UsageEvent:
    return UsageEvent(
        model="fake-model",
        user_id=1,
        key_id=1,
        source="api",
        prompt_tokens=3,
        completion_tokens=4,
        latency_ms=10,
        ttft_ms=None,
        status=200,
        cache_hit=False,
        stream=False,
        request_id=request_id,
        at=dt.datetime.now(dt.UTC),
    )


@pytest.fixture
def ada(live_fake: LiveServer, web: WebFactory) -> WebSession:
    live_fake.run(create_user("ada", password="ada-password"))
    session = web(live_fake.url)
    assert session.sign_in("ada", "ada-password").status_code == 303
    return session


def ask(session: WebSession, text: str) -> tuple[int, str]:
    """Send ``text`` in a new conversation as htmx does; the conversation and the path of the
    reply's stream (the page opens it with an EventSource)."""
    conversation = session.new_conversation()
    sent = session.post(f"/chat/{conversation}/messages", {"content": text}, htmx=True)
    assert sent.status_code == 200, sent.text
    found = re.search(r'sse-connect="([^"]+/stream)"', sent.text)
    assert found is not None, sent.text
    return conversation, found.group(1)


def test_a_stream_that_breaks_off_keeps_its_text_marked_as_failed_with_the_reason(
    ada: WebSession, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.fail_after = 2  # two words, then vLLM's in-band error event
    conversation, stream = ask(ada, "alpha beta gamma delta")
    events = ada.stream_events(stream)

    partials = [data.strip() for name, data in events if name == "partial"]
    assert partials[0] == "<p>alpha</p>"  # the first piece at once, as Markdown
    name, done = events[-1]
    assert name == "done"
    assert 'class="message assistant error"' in done
    assert "The model server failed: boom" in done
    page = ada.get(f"/chat/{conversation}").text  # as saved
    assert 'class="message assistant error"' in page
    assert "The model server failed: boom" in page
    assert "<p>alpha beta</p>" in page  # what was generated is kept


def test_a_second_request_for_a_reply_being_generated_follows_it_instead_of_generating(
    ada: WebSession,
    live_fake: LiveServer,
    web: WebFactory,
    fake_upstream: FakeUpstream,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hold = fake_upstream.hold = threading.Event()  # the model answers once the test says so
    conversation, stream = ask(ada, "one two three")
    reloaded = web(live_fake.url)  # the same person in another tab (or after a reload)
    assert reloaded.sign_in("ada", "ada-password").status_code == 303
    answered: queue.Queue[None] = queue.Queue()  # each stream request, once it chose its part
    respond = Stream  # what chat_controllers.Stream is until the test replaces it

    def watched(*args: Any, **kwargs: Any) -> Any:
        answered.put(None)
        return respond(*args, **kwargs)

    monkeypatch.setattr(chat_controllers, "Stream", watched)
    with ThreadPoolExecutor(2) as threads:
        try:
            first = threads.submit(ada.stream_events, stream)
            answered.get(timeout=DEADLINE)
            second = threads.submit(reloaded.stream_events, stream)  # while the first generates
            answered.get(timeout=DEADLINE)
        finally:
            hold.set()
        first_events = first.result(timeout=DEADLINE)
        second_events = second.result(timeout=DEADLINE)

    assert len(fake_upstream.requests) == 1  # one generation
    partials = [data.strip() for name, data in first_events if name == "partial"]
    assert partials[0] == "<p>one</p>"
    # it follows the same generation as it grows (in process: no database polling), then
    # shows the finished message
    assert {name for name, _ in second_events[:-1]} <= {"partial"}
    assert second_events[-1][0] == "done"
    for _, done in (first_events[-1], second_events[-1]):
        assert 'class="message assistant complete"' in done
        assert "<p>one two three</p>" in done
    page = ada.get(f"/chat/{conversation}").text
    assert page.count('class="message assistant complete"') == 1


def test_the_usage_buffer_keeps_the_newest_rows_and_counts_what_it_drops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer = UsageWriter(flush_interval=3600, batch_size=1000, max_buffered=3)  # never flushed
    dropped = "switchboard_usage_dropped_total"
    before = REGISTRY.get_sample_value(dropped)
    assert before is not None  # the counter is exported
    with caplog.at_level(logging.ERROR, logger="switchboard.usage.writer"):
        for number in range(5):
            writer.record(usage_event(f"r{number}"))

    assert [row.event.request_id for row in writer._buffer] == ["r2", "r3", "r4"]
    assert writer.pending == 3
    assert REGISTRY.get_sample_value(dropped) == before + 2
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert errors
    assert all("usage buffer full" in record.getMessage() for record in errors)


@pytest.mark.parametrize("app_overrides", [{"usage_flush_interval": 3600}])  # the test flushes
async def test_key_last_used_times_are_written_in_one_statement_per_batch(
    client: AsyncTestClient[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    question = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}
    for _ in range(3):
        secret = await mint_key(client, "alice")
        answer = await client.post(
            CHAT, json=question, headers={"Authorization": f"Bearer {secret}"}
        )
        assert answer.status_code == 200
    resources = client.app.state.resources
    statements: list[str] = []  # every statement the database runs from here on
    engine = type(resources.db)
    run = engine.run_querystring

    async def counting(self: Any, querystring: Any, *args: Any, **kwargs: Any) -> Any:
        statements.append(str(querystring))
        return await run(self, querystring, *args, **kwargs)

    monkeypatch.setattr(engine, "run_querystring", counting)
    assert await resources.usage.flush() == 3

    key_updates = [s for s in statements if re.match(r"\s*UPDATE\s+\"?api_keys\b", s, re.I)]
    assert len(key_updates) == 1, statements
    used = {row["key_id"] for row in await UsageRecord.select(UsageRecord.key_id)}
    assert len(used) == 3
    keys = await ApiKey.select(ApiKey.id, ApiKey.last_used_at).where(ApiKey.id.is_in(list(used)))
    assert len(keys) == 3
    assert all(key["last_used_at"] is not None for key in keys)


async def test_a_key_used_again_within_a_minute_is_not_written_again(
    client: AsyncTestClient[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Last-used times are kept to the minute: a key already stamped within the last minute
    costs no UPDATE (it was one statement a flush, twice a second under load, taking the core
    from requests); a key not seen before is stamped at once, and again a minute later."""
    carol = await create_user("carol", password="carol-password-1")  # pragma: allowlist secret
    user = int(carol.id)
    keys = KeyService()
    first, second = (await keys.mint(user)).key_id, (await keys.mint(user)).key_id
    statements: list[str] = []
    engine = type(client.app.state.resources.db)
    run = engine.run_querystring

    async def counting(self: Any, querystring: Any, *args: Any, **kwargs: Any) -> Any:
        statements.append(str(querystring))
        return await run(self, querystring, *args, **kwargs)

    monkeypatch.setattr(engine, "run_querystring", counting)

    async def stamps() -> dict[int, dt.datetime | None]:
        rows = await ApiKey.select(ApiKey.id, ApiKey.last_used_at).where(
            ApiKey.id.is_in([first, second])
        )
        return {row["id"]: row["last_used_at"] for row in rows}

    start = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
    await keys.touch({first}, start)
    await keys.touch({first, second}, start + dt.timedelta(seconds=30))
    await keys.touch({first, second}, start + dt.timedelta(seconds=59))
    updates = [s for s in statements if re.match(r"\s*UPDATE\s+\"?api_keys\b", s, re.I)]
    assert len(updates) == 2, updates
    assert await stamps() == {first: start, second: start + dt.timedelta(seconds=30)}

    await keys.touch({first, second}, start + dt.timedelta(seconds=61))
    assert await stamps() == {
        first: start + dt.timedelta(seconds=61),
        second: start + dt.timedelta(seconds=30),
    }


class KeptRecords(logging.Handler):
    """Keeps what its logger emits (the app's loggers do not propagate to pytest's caplog)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_server_error_raised_as_an_http_exception_is_logged_with_its_trace() -> None:
    """Litestar raises a 500 HTTPException of its own when a handler's wiring fails (a
    dependency it cannot check, say): a bug, so its trace is logged like any other."""

    @get("/boom", sync_to_thread=False)
    def boom() -> None:
        raise InternalServerException("wiring")

    handler = KeptRecords()
    logger = logging.getLogger("switchboard.web.errors")
    logger.addHandler(handler)
    app = Litestar([boom], exception_handlers={
        Exception: exception_handler(as_gateway_error, always_json=True)})  # fmt: skip
    try:
        with TestClient(app) as client:
            assert client.get("/boom").status_code == 500
    finally:
        logger.removeHandler(handler)
    logged = [r for r in handler.records if r.getMessage() == "unhandled error"]
    assert [(r.exc_info or (None,))[0] for r in logged] == [InternalServerException]

"""Shutdown with a stream in flight, driven at the ``open_resources`` level (the lifespan).

Leaving ``open_resources`` first lets the streams in flight finish (``shutdown_grace``), then
flushes usage, and only then closes the upstream pool: the caller receives its whole answer and
the request's usage row reaches the database. These tests use the gateway's own types, so on the
code before the drain existed they stop at the import.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import pytest

from switchboard.gateway.accounting import Caller
from switchboard.gateway.chunks import DONE, Chunk, StreamItem
from switchboard.gateway.parsing import ParsedRequest, parse_request
from switchboard.gateway.upstream import UpstreamPool
from switchboard.resources import open_resources
from switchboard.settings import Settings
from tests.conftest import SettingsFactory
from tests.support.fake_upstream import FakeUpstream

DEADLINE = 60.0
"""Seconds to wait for something that happens at once when the code is right."""
CALLER = Caller(user_id=1, key_id=None, rpm=1000, tpm=1_000_000, request_id="in-flight")


def streamed(text: str) -> ParsedRequest:
    body = {"model": "fake-model", "messages": [{"role": "user", "content": text}], "stream": True}
    return parse_request("chat", json.dumps(body).encode())


def usage_rows(settings: Settings) -> list[tuple[Any, ...]]:
    """The usage rows in the SQLite file, read past the app (its engine may be closed)."""
    path = settings.resolved_database_url.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(path)) as database:
        return database.execute(
            "SELECT request_id, status, stream, completion_tokens FROM usage_records ORDER BY id"
        ).fetchall()


class Consumer:
    """Reads a stream in its own task, as the server's response task would; with ``go``, it
    waits for it after the first word."""

    def __init__(
        self, events: AsyncIterator[list[StreamItem]], go: asyncio.Event | None = None
    ) -> None:
        self.items: list[StreamItem] = []
        self.first_chunk = asyncio.Event()
        self.task = asyncio.create_task(self._read(events, go))

    async def _read(
        self, events: AsyncIterator[list[StreamItem]], go: asyncio.Event | None
    ) -> None:
        async for batch in events:
            self.items += batch
            if (
                any(isinstance(i, Chunk) and i.text for i in batch)
                and not self.first_chunk.is_set()
            ):
                self.first_chunk.set()
                if go is not None:
                    await go.wait()

    @property
    def text(self) -> str:
        return "".join(item.text for item in self.items if isinstance(item, Chunk))

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def test_shutdown_lets_the_stream_finish_records_it_then_closes_the_pool(
    make_settings: SettingsFactory, fake_upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings()
    fake_upstream.chunk_delay = 0.2  # about a second and a half for the whole answer
    at_pool_close: list[tuple[bool, list[tuple[Any, ...]]]] = []
    consumer: Consumer | None = None
    close = UpstreamPool.aclose

    async def watched_close(pool: UpstreamPool) -> None:
        assert consumer is not None
        at_pool_close.append((DONE in consumer.items, usage_rows(settings)))
        await close(pool)

    monkeypatch.setattr(UpstreamPool, "aclose", watched_close)
    async with open_resources(settings, fake_upstream.transport()) as resources:
        completion = await resources.gateway.complete(streamed("one two three four five"), CALLER)
        assert completion.events is not None
        go = asyncio.Event()
        consumer = Consumer(completion.events, go)
        await asyncio.wait_for(consumer.first_chunk.wait(), DEADLINE)
        assert DONE not in consumer.items  # the stream is in flight as the shutdown begins
        go.set()  # it reads on while the context exits
    # the context has exited (concurrently with the consumer): the stream was let finish
    await asyncio.wait_for(consumer.task, DEADLINE)

    assert consumer.text == "one two three four five "
    assert consumer.items[-1] is DONE
    assert fake_upstream.stream_endings == ["finished"]
    expected_row = ("in-flight", 200, 1, 5)
    assert usage_rows(settings) == [expected_row]
    # the pool closed last: after the stream ended and its usage row was written
    assert at_pool_close == [(True, [expected_row])]


async def test_a_stream_outliving_the_grace_period_does_not_hold_shutdown_or_lose_its_usage(
    make_settings: SettingsFactory, fake_upstream: FakeUpstream
) -> None:
    settings = make_settings(shutdown_grace=0.5)
    fake_upstream.chunk_delay = 3600  # it will not finish by itself
    consumers: list[Consumer] = []

    async def serve_then_shut_down() -> None:
        async with open_resources(settings, fake_upstream.transport()) as resources:
            completion = await resources.gateway.complete(streamed("one two three"), CALLER)
            assert completion.events is not None
            consumers.append(Consumer(completion.events))

    try:
        await asyncio.wait_for(serve_then_shut_down(), DEADLINE)  # shutdown completes
    finally:
        for consumer in consumers:  # what the server does with a response task left over
            await consumer.stop()
    assert len(consumers) == 1
    # cut by the stopping gateway: 503 (SHUTDOWN_STATUS), with the tokens generated so far (none)
    assert usage_rows(settings) == [("in-flight", 503, 1, 0)]

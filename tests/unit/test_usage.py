"""Usage accounting: rows per request, batched writes, totals per day, retention."""

import asyncio
import datetime as dt
import os
import sqlite3
import sys
import threading
from collections.abc import Awaitable
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from piccolo.query.methods.raw import Raw
from piccolo.querystring import QueryString

from switchboard.db.bulk import WRITER_NICENESS
from switchboard.keys.tables import ApiKey
from switchboard.usage.queries import Subject, daily_totals, prune
from switchboard.usage.rows import PendingRow
from switchboard.usage.tables import UsageRecord
from switchboard.usage.writer import UsageEvent, UsageWriter
from tests.support.waiting import wait_for_async

CHAT = "/v1/chat/completions"


def event(**overrides: Any) -> UsageEvent:
    values: dict[str, Any] = {
        "model": "m",
        "user_id": 1,
        "key_id": 1,
        "source": "api",
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "latency_ms": 10,
        "ttft_ms": None,
        "status": 200,
        "cache_hit": False,
        "stream": False,
        "request_id": "r",
        "at": dt.datetime.now(dt.UTC),
    }
    values.update(overrides)
    return UsageEvent(**values)


async def test_each_request_becomes_one_row_matching_what_the_client_got(
    client: AsyncTestClient[Any],
) -> None:
    plain = await client.post(
        CHAT, json={"model": "fake-model", "messages": [{"role": "user", "content": "a b c"}]}
    )
    streamed = await client.post(
        CHAT,
        json={
            "model": "fake-model",
            "messages": [{"role": "user", "content": "a b"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    failed = await client.post(
        CHAT, json={"model": "gpt-x", "messages": [{"role": "user", "content": "x"}]}
    )
    assert (plain.status_code, streamed.status_code, failed.status_code) == (200, 200, 404)
    resources = client.app.state.resources
    await resources.usage.flush()
    rows = await UsageRecord.select().order_by(UsageRecord.id)
    assert [
        (r["prompt_tokens"], r["completion_tokens"], r["status"], r["stream"]) for r in rows
    ] == [
        (7, 3, 200, False),
        (7, 2, 200, True),
        (0, 0, 404, False),
    ]
    assert plain.json()["usage"]["completion_tokens"] == rows[0]["completion_tokens"]
    assert rows[1]["ttft_ms"] is not None
    assert rows[0]["request_id"] == plain.headers["x-request-id"]
    assert {r["key_id"] for r in rows} == {rows[0]["key_id"]}
    key = await ApiKey.select(ApiKey.last_used_at).where(ApiKey.id == rows[0]["key_id"]).first()
    assert key is not None
    assert key["last_used_at"] is not None


async def test_writes_are_batched_and_flushed_on_close(client: AsyncTestClient[Any]) -> None:
    writer = UsageWriter(flush_interval=3600, batch_size=1000)
    writer.start()
    for _ in range(5):
        writer.record(event())
    assert writer.pending == 5
    assert await UsageRecord.count() == 0
    await writer.aclose()
    assert writer.pending == 0
    assert await UsageRecord.count() == 5


async def test_a_full_batch_wakes_the_writer(client: AsyncTestClient[Any]) -> None:
    writer = UsageWriter(flush_interval=3600, batch_size=3)
    writer.start()
    for _ in range(3):
        writer.record(event())

    # no flush is asked for: the third record alone must wake the writer (60 s: a busy machine)
    async def written() -> bool:
        return int(await UsageRecord.count()) >= 3

    await wait_for_async(written, "the three rows written", every=0.05)
    assert await UsageRecord.count() == 3
    await writer.aclose()


async def test_a_flush_writes_what_was_buffered_when_it_began(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rows recorded while a flush's insert runs wait for the next flush. A flush that drained
    the buffer until empty never ended under steady load: one small insert after another, each
    a connection, a commit and a WAL checkpoint on SQLite (measured: 10 to 40 rows every 20 ms
    at one connection, half of the gateway's CPU per request)."""
    writer = UsageWriter(flush_interval=3600, batch_size=100)
    inserted: list[int] = []

    async def insert(rows: list[PendingRow], _thread: object = None) -> None:
        inserted.append(len(rows))
        if len(inserted) < 5:  # a request ends while the insert runs
            writer.record(event())
        await asyncio.sleep(0)

    monkeypatch.setattr("switchboard.usage.writer.insert_rows", insert)
    for _ in range(3):
        writer.record(event())
    assert await writer.flush() == 3
    assert inserted == [3]
    assert writer.pending == 1  # for the next flush


async def test_daily_totals_per_key_and_per_user(client: AsyncTestClient[Any]) -> None:
    today = dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    yesterday = today - dt.timedelta(days=1)
    writer = UsageWriter(flush_interval=3600, batch_size=100)
    for at, key, user, status, hit in [
        (today, 1, 10, 200, False),
        (today, 1, 10, 200, True),
        (today, 2, 10, 500, False),
        (yesterday, 1, 10, 200, False),
        (today, 3, 11, 200, False),
    ]:
        writer.record(event(at=at, key_id=key, user_id=user, status=status, cache_hit=hit))
    await writer.flush()
    since = yesterday - dt.timedelta(hours=13)
    by_key = await daily_totals("key", since=since, until=today + dt.timedelta(hours=1))
    summary = [
        (t.day, t.subject_id, t.requests, t.total_tokens, t.cache_hits, t.errors) for t in by_key
    ]
    assert summary == [
        (yesterday.date(), 1, 1, 7, 0, 0),
        (today.date(), 1, 2, 14, 1, 0),
        (today.date(), 2, 1, 7, 0, 1),
        (today.date(), 3, 1, 7, 0, 0),
    ]
    until = today + dt.timedelta(hours=1)
    one_user = await daily_totals("user", since=since, until=until, subject_id=10)
    assert [(t.day, t.requests) for t in one_user] == [(yesterday.date(), 1), (today.date(), 3)]


async def test_retention_prunes_old_rows_in_batches(client: AsyncTestClient[Any]) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=100)
    writer = UsageWriter(flush_interval=3600, batch_size=100)
    for index in range(25):
        writer.record(event(at=old if index < 23 else dt.datetime.now(dt.UTC)))
    await writer.flush()
    deleted = await prune(dt.datetime.now(dt.UTC) - dt.timedelta(days=90), batch=10)
    assert deleted == 23
    assert await UsageRecord.count() == 2


async def issued_sql(work: Awaitable[object]) -> list[QueryString]:
    """The queries ``work`` makes the database engine run, exactly as it runs them (not those
    of the app's background tasks meanwhile)."""
    engine_class = type(UsageRecord._meta.db)
    run = engine_class.run_querystring
    issued: list[QueryString] = []
    this_task = asyncio.current_task()

    async def recording(engine: Any, querystring: QueryString, *args: Any, **kwargs: Any) -> Any:
        if asyncio.current_task() is this_task:
            issued.append(querystring)
        return await run(engine, querystring, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine_class, "run_querystring", recording)
        await work
    return issued


async def query_plan(querystring: QueryString) -> str:
    """SQLite's plan for that very query, with the same bound values."""
    explain = QueryString("EXPLAIN QUERY PLAN {}", querystring)
    rows = await Raw(table=UsageRecord, querystring=explain)
    return " | ".join(str(row["detail"]) for row in rows)


async def test_totals_for_one_user_or_key_use_the_composite_indexes(
    client: AsyncTestClient[Any],
) -> None:
    """The usage queries must not scan the whole table (millions of rows): the SQL that
    ``daily_totals`` sends is explained as sent."""
    since = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    until = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    cases: list[tuple[Subject, str]] = [
        ("user", "usage_records_user_time"),
        ("key", "usage_records_key_time"),
    ]
    for by, index in cases:
        issued = await issued_sql(daily_totals(by, since=since, until=until, subject_id=1))
        assert len(issued) == 1, issued
        plan = await query_plan(issued[0])
        assert f"SEARCH usage_records USING INDEX {index} (" in plan, plan
        assert "SCAN usage_records" not in plan, plan
    # everyone's totals (the admin and keys pages): the time range comes from an index
    issued = await issued_sql(daily_totals("key", since=since, until=until))
    assert len(issued) == 1, issued
    plan = await query_plan(issued[0])
    assert "SEARCH usage_records USING INDEX usage_records_created_at (" in plan, plan
    assert "SCAN usage_records" not in plan, plan


class TrackedConnection(sqlite3.Connection):
    """A connection that remembers being closed and the ``synchronous`` pragma it ran with."""

    closed = False
    synchronous = ""

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql.startswith("PRAGMA synchronous"):
            self.synchronous = sql.rpartition("=")[2].strip()
        return super().execute(sql, *args)

    def close(self) -> None:
        self.closed = True
        super().close()


def watch_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> list[tuple[str, int, int, TrackedConnection]]:
    """Each SQLite connection the writer's thread or the event loop's opens: the thread's
    name, native id and niceness, and the connection (the app's own queries connect from
    aiosqlite's threads)."""
    seen: list[tuple[str, int, int, TrackedConnection]] = []
    connect = sqlite3.connect

    def watched(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection = connect(*args, factory=TrackedConnection, **kwargs)
        assert isinstance(connection, TrackedConnection)
        thread = threading.current_thread()
        if thread.name.startswith("usage-writer") or thread is threading.main_thread():
            tid = threading.get_native_id()
            seen.append((thread.name, tid, os.getpriority(os.PRIO_PROCESS, tid), connection))
        return connection

    monkeypatch.setattr(sqlite3, "connect", watched)
    return seen


async def test_sqlite_inserts_run_on_one_writer_thread_that_yields_the_core(
    client: AsyncTestClient[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every SQLite insert of one writer runs on the same thread, never the event loop's, at a
    lower CPU priority than the process (Linux), on the one connection that thread keeps. The
    driver's thread per connection, at the loop's priority, took a pinned core from the request
    path during each flush (measured at one connection: requests overlapping an insert took
    2.7 ms at the median against 1.0), and a connection a flush cost the thread 1 ms more."""
    seen = watch_connections(monkeypatch)
    writer = UsageWriter(flush_interval=3600, batch_size=100)
    for _ in range(3):
        writer.record(event())
        assert await writer.flush() == 1
    kept = seen[0][3]
    assert not kept.closed
    await writer.aclose()

    assert len(seen) == 1, seen  # one connection for every flush, none on the loop's thread
    assert seen[0][0] != threading.main_thread().name
    if sys.platform == "linux":
        base = os.getpriority(os.PRIO_PROCESS, 0)
        assert seen[0][2] == min(19, base + WRITER_NICENESS)
    assert kept.closed  # by aclose
    assert kept.synchronous == "NORMAL"  # commits wait for the disk only at checkpoints (WAL)
    assert await UsageRecord.count() == 3


async def test_the_writer_opens_a_new_connection_after_a_failed_insert(
    client: AsyncTestClient[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused insert closes the kept connection (rolling its rows back); the next flush
    opens a new one and writes the rows that were not refused."""
    seen = watch_connections(monkeypatch)
    writer = UsageWriter(flush_interval=3600, batch_size=100)
    writer.record(event(request_id="first"))
    assert await writer.flush() == 1
    refuse = "WHEN NEW.request_id = 'bad' BEGIN SELECT RAISE(ABORT, 'refused'); END"
    await ApiKey.raw(f"CREATE TRIGGER refuse BEFORE INSERT ON usage_records {refuse}")
    writer.record(event(request_id="bad"))
    assert await writer.flush() == 0
    assert writer.rejected == 1
    writer.record(event(request_id="after"))
    assert await writer.flush() == 1
    await writer.aclose()
    assert len(seen) == 2, seen  # the first, and a new one after the refusal
    assert [connection.closed for _, _, _, connection in seen] == [True, True]
    stored = await UsageRecord.select(UsageRecord.request_id).order_by(UsageRecord.id)
    assert [row["request_id"] for row in stored] == ["first", "after"]

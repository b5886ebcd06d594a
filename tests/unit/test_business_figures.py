"""The business gauges' figures: today's and this week's usage, active keys, the top users and
keys, computed by the usage feature and published by observability."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import sys
import threading
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from switchboard.accounts.services import create_user
from switchboard.db.bulk import close_kept_thread, reader_thread
from switchboard.keys.services import KeyService, count_active
from switchboard.keys.tables import ApiKey
from switchboard.observability.business import publish
from switchboard.usage.business import business_figures
from switchboard.usage.writer import UsageWriter
from tests.unit.test_usage import event


async def figures_now(client: AsyncTestClient[Any]) -> Any:
    """The figures as the app computes them: on a reads thread of its own."""
    reads = reader_thread("business-reads")
    try:
        return await business_figures(client.app.state.resources.db, reads)
    finally:
        await close_kept_thread(reads)


async def test_figures_count_today_the_week_and_live_keys_and_rank_the_top(
    client: AsyncTestClient[Any],
) -> None:
    ada = int((await create_user("ada", password="ada-password-1")).id)  # pragma: allowlist secret
    bob = int((await create_user("bob", password="bob-password-1")).id)  # pragma: allowlist secret
    keys = KeyService()
    before = await count_active(dt.datetime.now(dt.UTC))  # the client fixture's own
    ada_key = await keys.mint(ada)
    bob_key = await keys.mint(bob)
    revoked = await keys.mint(bob)
    await keys.revoke(revoked.key_id)
    expired = await keys.mint(bob)
    yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    await ApiKey.update({ApiKey.expires_at: yesterday}).where(ApiKey.id == expired.key_id)
    now = dt.datetime.now(dt.UTC)
    writer = UsageWriter(flush_interval=3600, batch_size=100)
    writer.record(event(user_id=ada, key_id=ada_key.key_id, prompt_tokens=10, completion_tokens=5))
    writer.record(event(user_id=bob, key_id=bob_key.key_id, prompt_tokens=30, completion_tokens=0))
    writer.record(
        event(user_id=bob, key_id=None, source="chat", prompt_tokens=1, completion_tokens=1)
    )
    three_days_ago = now - dt.timedelta(days=3)
    writer.record(event(user_id=ada, key_id=ada_key.key_id, prompt_tokens=500, at=three_days_ago))
    await writer.flush()

    figures = await figures_now(client)

    assert figures.active_users == {"1d": 2, "7d": 2}
    assert (figures.requests_today, figures.tokens_today) == (3, 47)
    assert figures.active_keys == before + 2  # not the revoked one, not the expired one
    assert figures.top_users == [("bob", 32), ("ada", 15)]
    assert figures.top_keys == [(f"{bob_key.prefix}…", 30), (f"{ada_key.prefix}…", 15)]

    publish(figures)
    assert REGISTRY.get_sample_value("switchboard_tokens_today") == 47
    top = {"rank": "1", "user": "bob"}
    assert REGISTRY.get_sample_value("switchboard_top_user_tokens", top) == 32


async def test_the_aggregates_over_usage_run_only_when_the_core_is_idle(
    client: AsyncTestClient[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each statement that reads the usage table runs on a thread that the kernel runs only
    when nothing else wants the core (Linux's SCHED_IDLE), never the event loop's. A day of a
    busy gateway's rows takes SQLite a few hundred milliseconds: at the loop's priority, on a
    pinned core, every request in that time waited (at one connection, the p99 of the second
    it ran in went from about 3 to 10 ms; at a lower niceness, still 6)."""
    seen: list[tuple[str, int]] = []
    connect = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection: sqlite3.Connection = connect(*args, **kwargs)

        def statement(sql: str) -> None:
            if "usage_records" in sql:
                policy = os.sched_getscheduler(0) if sys.platform == "linux" else -1
                seen.append((threading.current_thread().name, policy))

        connection.set_trace_callback(statement)
        return connection

    monkeypatch.setattr(sqlite3, "connect", traced)
    writer = UsageWriter(flush_interval=3600, batch_size=100)
    writer.record(event(prompt_tokens=10, completion_tokens=5))
    await writer.flush()
    await writer.aclose()
    seen.clear()  # the insert's own statements

    figures = await figures_now(client)

    assert figures.tokens_today == 15
    assert len(seen) == 2, seen  # the week's users, then today's figures
    assert all(name != threading.main_thread().name for name, _ in seen)
    if sys.platform == "linux":
        assert {policy for _, policy in seen} == {os.SCHED_IDLE}

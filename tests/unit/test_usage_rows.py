"""Usage rows are made storable before they are queued, and the writer tells an outage (keep
the rows, retry) from a refused row (set it aside, write the rest)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from prometheus_client import REGISTRY

from switchboard.usage import writer as writer_module
from switchboard.usage.rows import INT_MAX, PendingRow, pending, storable
from switchboard.usage.tables import UsageRecord
from switchboard.usage.writer import UsageWriter
from tests.unit.test_usage import event


def clamped() -> float:
    return REGISTRY.get_sample_value("switchboard_usage_clamped_total") or 0.0


def test_a_clean_event_is_kept_as_it_is() -> None:
    original = event(model="smollm2", request_id="abc")
    before = clamped()
    assert storable(original) is original
    assert clamped() == before


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("model", "a\x00b", "a\ufffdb"),
        ("model", "lone \ud800 surrogate", "lone ? surrogate"),
        ("model", "m" * 500, "m" * 128),
        ("model", "é" * 200, "é" * 128),
        ("request_id", "r" * 100, "r" * 64),
        ("source", "\x00api", "\ufffdapi"),
        ("prompt_tokens", 2**40, INT_MAX),
        ("completion_tokens", -5, 0),
        ("latency_ms", 2**63, INT_MAX),
        ("ttft_ms", 2**33, INT_MAX),
    ],
)
def test_values_are_made_storable_and_counted(field: str, value: Any, expected: Any) -> None:
    before = clamped()
    made = storable(event(**{field: value}))
    assert getattr(made, field) == expected
    assert clamped() == before + 1
    made.model.encode("utf-8")  # encodable: no lone surrogate left


def test_a_total_past_the_range_is_clamped_too() -> None:
    before = clamped()
    made = storable(event(prompt_tokens=INT_MAX, completion_tokens=INT_MAX))
    assert (made.prompt_tokens, made.completion_tokens) == (INT_MAX, INT_MAX)
    assert clamped() == before + 1  # flagged: its total does not fit


async def test_an_outage_keeps_the_rows_and_never_writes_one_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The database refuses row 2, then goes away while the batch is being split: the rows
    written so far are not written again, the others stay buffered in order."""
    written: list[str] = []
    down = {"now": False, "once": True}

    async def insert(rows: list[PendingRow], _thread: object = None) -> None:
        if down["now"]:
            raise ConnectionRefusedError("database down")
        if any(row.event.request_id == "r2" for row in rows):
            if len(rows) == 2 and down["once"]:  # down once the split reaches the refused pair
                down["now"], down["once"] = True, False
            raise ValueError("refused")
        written.extend(row.event.request_id for row in rows)

    monkeypatch.setattr(writer_module, "insert_rows", insert)
    usage = UsageWriter(flush_interval=3600, batch_size=100)
    for number in range(6):
        usage.record(event(request_id=f"r{number}"))
    with pytest.raises(ConnectionRefusedError):
        await usage.flush()
    assert written == ["r0"]  # [r0 r1 r2 | r3 r4 r5] → [r0 | r1 r2] → r0 written, then down
    assert [row.event.request_id for row in usage._buffer] == ["r1", "r2", "r3", "r4", "r5"]
    down["now"] = False
    assert await usage.flush() == 4
    assert written == ["r0", "r1", "r3", "r4", "r5"]
    assert (usage.rejected, usage.pending) == (1, 0)


async def test_sqlite_rows_reach_the_writer_thread_plain_and_read_back_the_same(
    client: Any,
) -> None:
    """On SQLite a recorded row holds only what the driver binds without an adapter (each
    adapter is a Python call in the writer thread, holding the GIL against the event loop),
    in the form Piccolo's adapters give: read back through Piccolo, nothing changed."""
    at = dt.datetime(2026, 12, 7, 10, 20, 56, 474599, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    row = pending(event(at=at, cache_hit=True, stream=False, ttft_ms=None, request_id="plain"))
    assert {type(value) for value in row.values} <= {int, str, type(None)}, row.values
    assert row.event.at == at  # the event itself is left as it was (keys' last use reads it)
    writer = UsageWriter(flush_interval=3600, batch_size=10)
    writer.record(row.event)
    assert await writer.flush() == 1
    await writer.aclose()
    stored = await UsageRecord.select().where(UsageRecord.request_id == "plain").first()
    assert stored is not None
    assert (stored["created_at"], stored["cache_hit"], stored["stream"]) == (at, True, False)

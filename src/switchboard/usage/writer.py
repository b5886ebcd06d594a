"""Batched usage writes, off the response path.

``record`` makes the row storable and bindable (rows.py) and appends it to a buffer; a background
task inserts the buffer every ``flush_interval`` seconds (or sooner once ``batch_size`` rows
wait). A slow database delays only this task, never a completion; ``aclose`` flushes what is
left, so nothing storable is lost on a clean shutdown.

Two kinds of failure, told apart: while the database is unreachable, rows stay buffered for the
next attempt (at most ``max_buffered``; older ones are then dropped, counted in
``switchboard_usage_dropped_total`` and logged). When the database refuses a statement, the
batch is split in halves until the refused row is alone; that row is set aside (logged in full
with its request id, counted in ``switchboard_usage_rejected_total``) and every other row is
written: one bad value never blocks the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sqlite3
from collections import deque
from collections.abc import Awaitable, Callable

from switchboard.db.bulk import close_kept_thread, writer_thread
from switchboard.db.engine import UNAVAILABLE
from switchboard.observability.metrics import USAGE_DROPPED, USAGE_REJECTED, timed
from switchboard.usage.rows import (
    ROWS_PER_STATEMENT,
    PendingRow,
    UsageEvent,
    insert_rows,
    pending,
)

__all__ = ["UsageEvent", "UsageWriter"]

log = logging.getLogger(__name__)

RETRY_LATER: tuple[type[Exception], ...] = (*UNAVAILABLE, sqlite3.OperationalError)
"""The database cannot take the rows now (down, locked, disk): keep them and retry. Any other
error is the database refusing what a statement holds."""


class UsageWriter:
    def __init__(
        self,
        *,
        flush_interval: float,
        batch_size: int,
        max_buffered: int = 100_000,
        on_flushed: Callable[[list[UsageEvent]], Awaitable[None]] | None = None,
    ) -> None:
        self.flush_interval = flush_interval
        self.batch_size = max(1, min(batch_size, ROWS_PER_STATEMENT))
        self.max_buffered = max_buffered
        self.dropped = 0
        self.rejected = 0
        self.on_flushed = on_flushed
        self._buffer: list[PendingRow] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._flush_lock = asyncio.Lock()
        self._thread = writer_thread("usage-writer")  # SQLite's inserts (db/bulk.py)
        self.written = 0

    def record(self, event: UsageEvent) -> None:
        self._buffer.append(pending(event))
        self._bound()
        if len(self._buffer) >= self.batch_size:
            self._wake.set()

    def _bound(self) -> None:
        if len(self._buffer) <= self.max_buffered:
            return
        excess = len(self._buffer) - self.max_buffered
        del self._buffer[:excess]
        self.dropped += excess
        USAGE_DROPPED.inc(excess)
        log.error(
            "usage buffer full (is the database down?): dropped the oldest rows",
            extra={"dropped": excess, "dropped_total": self.dropped},
        )

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="usage-writer")

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.flush_interval)
            self._wake.clear()
            if self._stopping:
                return
            try:
                await self.flush()
            except RETRY_LATER as exc:
                log.warning(
                    "usage flush failed (database unavailable); will retry",
                    extra={"pending": self.pending, "error": repr(exc)},
                )
            except Exception:  # pragma: no cover - a writer bug must not end the loop
                log.exception("usage flush failed; will retry", extra={"pending": self.pending})

    async def flush(self) -> int:
        """Insert what is buffered now; returns how many rows were written. Rows recorded
        meanwhile wait for the next flush: draining until empty never ends under steady load,
        one small insert after another. Raises (keeping the rows not yet written) only when the
        database is unavailable."""
        async with self._flush_lock:
            written, left = 0, len(self._buffer)
            while left > 0 and self._buffer:
                batch = self._buffer[: min(self.batch_size, left)]
                del self._buffer[: len(batch)]
                left -= len(batch)
                stored = await self._store(batch)
                written += len(stored)
                self.written += len(stored)
                if stored and self.on_flushed:
                    try:
                        await self.on_flushed(stored)
                    except Exception:  # a follow-up (keys' last use) never stops the writer
                        log.exception("usage written, but its follow-up failed")
            return written

    async def _store(self, batch: list[PendingRow]) -> list[UsageEvent]:
        """Write ``batch``, setting aside the rows the database refuses; the rows stored."""
        stored: list[UsageEvent] = []
        todo = deque([batch])
        while todo:
            rows = todo.popleft()
            try:
                with timed("usage_insert"):
                    await insert_rows(rows, self._thread)
            except RETRY_LATER:
                self._buffer[:0] = [row for part in (rows, *todo) for row in part]
                self._bound()
                raise
            except Exception as exc:  # any refusal: find the row that caused it
                if len(rows) == 1:
                    self._set_aside(rows[0].event, exc)
                else:
                    middle = len(rows) // 2
                    todo.extendleft([rows[middle:], rows[:middle]])
            else:
                stored += [row.event for row in rows]
        return stored

    def _set_aside(self, row: UsageEvent, exc: Exception) -> None:
        self.rejected += 1
        USAGE_REJECTED.inc()
        fields = {k: str(v) for k, v in dataclasses.asdict(row).items()}
        log.error(
            "usage row refused by the database: set aside (the rest is written)",
            extra={
                "request_id": row.request_id,
                "row": fields,
                "error": f"{type(exc).__name__}: {exc}",
            },
        )

    async def aclose(self) -> None:
        """Stop the loop after the flush it may be doing (an insert is never cut in the
        middle: its driver thread would answer a closed loop), then flush what is left."""
        if self._task:
            self._stopping = True
            self._wake.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            while self.pending:  # rows of answers that ended during the last flush too
                await self.flush()
        except RETRY_LATER:
            log.error(
                "usage rows lost at shutdown: the database is unavailable",
                extra={"lost": self.pending},
            )
        finally:
            await close_kept_thread(self._thread)  # idle: every insert was awaited

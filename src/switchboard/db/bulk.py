"""Many rows into one table at once, by each driver's bulk path; and long reads (aggregates
over many rows) off the request path.

Piccolo's ``raw`` turns every bound value into a query-string node (about 16 µs a row, measured):
for the usage writer's batches that was most of a request's accounting. Here the rows go to the
driver as they are, in one transaction: PostgreSQL's COPY (asyncpg, through the pool the app
opened), SQLite's executemany (measured: 18 against 52 µs a row). All rows are stored, or none.

SQLite's driver is synchronous: its inserts run on the caller's ``writer_thread``, one thread
for the writer's life at a lower CPU priority than the process, in one hop (insert, commit) on
the connection that thread keeps. aiosqlite's thread per connection, at the event loop's
priority and with a hop per statement, took the core from the request path during every flush:
at one connection, requests that overlapped an insert took 2.7 ms at the median against 1.0 ms.

The writer thread shares the GIL with the event loop, so it should run no Python of its own:
rows reach it ``bindable`` (plain values, made by the caller), so SQLite calls no adapter per
value. Measured on a 1,000-row flush at one connection: 13.5 ms in the thread with Piccolo's
adapters and a connection a flush, 2.3 ms with plain values and a kept connection.

``select_rows`` runs a long read on a ``reader_thread``'s kept connection: an aggregate that
scans a day of a busy gateway's usage rows takes SQLite a few hundred milliseconds, which at
the process's priority stalled every request on the core while it ran (at one connection, the
p99 of the second it ran in: about 10 ms against 3).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import sqlite3
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import (
    SQLiteEngine,
    convert_date_in,
    convert_datetime_in,
    convert_time_in,
)

from switchboard.db.engine import AnyEngine

WRITER_NICENESS = 10
"""How much lower a writer thread's CPU priority is than the process's (Linux ``nice``): on a
busy core the event loop's thread and granian's come first, and the writer still gets about a
tenth of the core (weight 110 against 1024), far more than a flush needs."""


SQLITE_PLAIN: dict[type, Callable[[Any], object]] = {
    bool: int,
    dt.datetime: convert_datetime_in,
    dt.date: convert_date_in,
    dt.time: convert_time_in,
}
"""What SQLite's driver would adapt, made plain as Piccolo's adapters make it (text for
times, as Piccolo reads them back; 0/1 for booleans)."""

SQLITE_SYNCHRONOUS = "NORMAL"
"""The writer's connection commits without waiting for the disk (WAL: a commit is durable at
the next checkpoint; a power cut can lose the last ones, never corrupt the file). The rows
waited up to a flush interval in memory before it anyway; Piccolo's connections keep FULL."""


def bindable(engine: AnyEngine, row: tuple[object, ...]) -> tuple[object, ...]:
    """``row`` as ``insert_many`` binds it on ``engine``; call it where the row is made, on
    the event loop, a few microseconds a row (see the module's docstring)."""
    if isinstance(engine, PostgresEngine):
        return row  # COPY encodes on the loop already, by asyncpg's codecs
    return tuple([plain(value) if (plain := SQLITE_PLAIN.get(type(value))) else value
                  for value in row])  # fmt: skip


def writer_thread(name: str) -> ThreadPoolExecutor:
    """One thread for bulk writes, at a lower CPU priority, keeping one SQLite connection; end
    it with ``close_kept_thread``."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix=name, initializer=_yield_the_core)


def lookup_thread(name: str) -> ThreadPoolExecutor:
    """One thread for short reads a request may wait for (``select_rows``), at the process's
    priority, keeping one SQLite connection; end it with ``close_kept_thread``."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)


def reader_thread(name: str) -> ThreadPoolExecutor:
    """One thread for long reads that may wait (``select_rows``), keeping one SQLite
    connection, run only when the core has nothing else to do (Linux's ``SCHED_IDLE``: a
    request waking up takes the core from it at once, where a merely lower priority still let
    it finish its time slice, 3-5 ms); end it with ``close_kept_thread``."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix=name, initializer=_idle)


async def close_kept_thread(thread: ThreadPoolExecutor) -> None:
    """Close the connection one of the threads above keeps, then let the thread end (call it
    when nothing runs on it: the writer awaits each insert, the readers each query)."""
    await asyncio.get_running_loop().run_in_executor(thread, _close_kept)
    thread.shutdown(wait=False)


def _yield_the_core() -> None:
    if sys.platform != "linux":  # elsewhere a priority is the whole process's: leave it
        return
    thread = threading.get_native_id()
    with contextlib.suppress(OSError):
        niceness = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, niceness + WRITER_NICENESS))


def _idle() -> None:
    if sys.platform != "linux":
        _yield_the_core()  # elsewhere a priority is the whole process's: this leaves it
        return
    with contextlib.suppress(OSError):
        os.sched_setscheduler(threading.get_native_id(), os.SCHED_IDLE, os.sched_param(0))


async def insert_many(
    engine: AnyEngine,
    table: str,
    columns: Sequence[str],
    rows: Sequence[tuple[object, ...]],
    thread: Executor | None = None,
) -> None:
    """Insert ``rows`` (values in ``columns`` order, ``bindable``) into ``table``, atomically;
    SQLite's on ``thread`` (a ``writer_thread``; the loop's default executor without one)."""
    if isinstance(engine, PostgresEngine):
        if engine.pool is None:
            raise RuntimeError("the PostgreSQL connection pool is not open (open_engine)")
        async with engine.pool.acquire() as connection:
            await connection.copy_records_to_table(table, records=rows, columns=list(columns))
        return
    assert isinstance(engine, SQLiteEngine)
    marks = ", ".join("?" * len(columns))
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608  # nosec B608
    loop = asyncio.get_running_loop()
    keep = thread is not None  # a writer thread's own; never one in the loop's shared pool
    await loop.run_in_executor(thread, _insert_sqlite, engine.connection_kwargs, sql, rows, keep)


async def select_rows(
    engine: AnyEngine, sql: str, params: Sequence[object], thread: Executor
) -> list[dict[str, Any]]:
    """The rows of a read (``?`` marks its parameters) as dicts: SQLite's on ``thread`` (a
    ``reader_thread`` or a ``lookup_thread``) and its kept connection, PostgreSQL's through
    the pool (the database server does the work)."""
    if isinstance(engine, PostgresEngine):
        if engine.pool is None:
            raise RuntimeError("the PostgreSQL connection pool is not open (open_engine)")
        pieces = sql.split("?")
        numbered = pieces[0] + "".join(f"${n}{piece}" for n, piece in enumerate(pieces[1:], 1))
        async with engine.pool.acquire() as connection:
            return [dict(record) for record in await connection.fetch(numbered, *params)]
    assert isinstance(engine, SQLiteEngine)
    values = bindable(engine, tuple(params))
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(thread, _select_sqlite, engine.connection_kwargs, sql, values)


def _select_sqlite(
    connection_kwargs: dict[str, Any], sql: str, params: tuple[object, ...]
) -> list[dict[str, Any]]:
    try:
        cursor = _connection(connection_kwargs).execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    except BaseException:
        _close_kept()
        raise


_kept = threading.local()
"""Each writer, reader or lookup thread's SQLite connection and the settings it was opened
with."""


def _insert_sqlite(
    connection_kwargs: dict[str, Any], sql: str, rows: Sequence[tuple[object, ...]], keep: bool
) -> None:
    """One transaction on this thread's kept connection (``keep``) or one of its own. After a
    failure the connection is closed (which rolls the rows back); the next insert opens one."""
    connection = _connection(connection_kwargs) if keep else _open(connection_kwargs)
    try:
        connection.execute("BEGIN")
        connection.executemany(sql, rows)
        connection.execute("COMMIT")
    except BaseException:
        _close_kept() if keep else connection.close()
        raise
    if not keep:
        connection.close()


def _connection(connection_kwargs: dict[str, Any]) -> sqlite3.Connection:
    """This thread's connection, opened as Piccolo opens them (its adapters and options, its
    ``foreign_keys`` pragma) at the first insert, or again when the settings changed."""
    kept: tuple[dict[str, Any], sqlite3.Connection] | None = getattr(_kept, "open", None)
    if kept is not None and kept[0] == connection_kwargs:
        return kept[1]
    _close_kept()
    connection = _open(connection_kwargs)
    _kept.open = (dict(connection_kwargs), connection)
    return connection


def _open(connection_kwargs: dict[str, Any]) -> sqlite3.Connection:
    connection: sqlite3.Connection = sqlite3.connect(**connection_kwargs)
    connection.execute("PRAGMA foreign_keys = 1")
    connection.execute(f"PRAGMA synchronous = {SQLITE_SYNCHRONOUS}")
    return connection


def _close_kept() -> None:
    kept: tuple[dict[str, Any], sqlite3.Connection] | None = getattr(_kept, "open", None)
    _kept.open = None
    if kept is not None:
        kept[1].close()

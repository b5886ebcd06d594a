"""Many rows into one table at once, by each driver's bulk path.

Piccolo's ``raw`` turns every bound value into a query-string node (about 16 µs a row, measured):
for the usage writer's batches that was most of a request's accounting. Here the rows go to the
driver as they are, in one transaction: PostgreSQL's COPY (asyncpg, through the pool the app
opened), SQLite's executemany (measured: 18 against 52 µs a row). All rows are stored, or none.

SQLite's driver is synchronous: its inserts run on the caller's ``writer_thread``, one thread
for the writer's life at a lower CPU priority than the process, in one hop (connect, insert,
commit). aiosqlite's thread per connection, at the event loop's priority and with a hop per
statement, took the core from the request path during every flush: at one connection, requests
that overlapped an insert took 2.7 ms at the median against 1.0 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine

from switchboard.db.engine import AnyEngine

WRITER_NICENESS = 10
"""How much lower a writer thread's CPU priority is than the process's (Linux ``nice``): on a
busy core the event loop's thread and granian's come first, and the writer still gets about a
tenth of the core (weight 110 against 1024), far more than a flush needs."""


def writer_thread(name: str) -> ThreadPoolExecutor:
    """One thread for bulk writes, at a lower CPU priority; shut it down after the last write."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix=name, initializer=_yield_the_core)


def _yield_the_core() -> None:
    if sys.platform != "linux":  # elsewhere a priority is the whole process's: leave it
        return
    thread = threading.get_native_id()
    with contextlib.suppress(OSError):
        niceness = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, niceness + WRITER_NICENESS))


async def insert_many(
    engine: AnyEngine,
    table: str,
    columns: Sequence[str],
    rows: Sequence[tuple[object, ...]],
    thread: Executor | None = None,
) -> None:
    """Insert ``rows`` (values in ``columns`` order) into ``table``, atomically; SQLite's on
    ``thread`` (the loop's default executor without one)."""
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
    await loop.run_in_executor(thread, _insert_sqlite, engine.connection_kwargs, sql, rows)


def _insert_sqlite(
    connection_kwargs: dict[str, Any], sql: str, rows: Sequence[tuple[object, ...]]
) -> None:
    """One transaction on a connection of its own, as Piccolo opens them (its adapters, its
    ``foreign_keys`` pragma); closing it uncommitted rolls the rows back."""
    connection = sqlite3.connect(**connection_kwargs)
    try:
        connection.execute("PRAGMA foreign_keys = 1")
        connection.execute("BEGIN")
        connection.executemany(sql, rows)
        connection.execute("COMMIT")
    finally:
        connection.close()

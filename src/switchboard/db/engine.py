"""Database engine: SQLite by default, PostgreSQL when the URL says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeAlias

from asyncpg import exceptions as pg
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine

AnyEngine: TypeAlias = Engine[Any]


def build_engine(url: str) -> AnyEngine:
    """An engine for ``sqlite:///path`` or ``postgresql://...`` (settings checked the scheme)."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        # WAL lets the usage writer and page reads overlap; busy_timeout rides out short locks.
        return SQLiteEngine(path=str(path), timeout=30)
    return PostgresEngine(config={"dsn": url.replace("postgres://", "postgresql://", 1)})


UNAVAILABLE: tuple[type[Exception], ...] = (
    ConnectionError,  # refused, reset: the server is down or gone
    TimeoutError,  # no answer in time
    pg.PostgresConnectionError,  # the connection broke
    pg.OperatorInterventionError,  # shutting down, starting up, restarted
    pg.TooManyConnectionsError,
)
"""What the database raises when it cannot be reached or cannot serve now: not a bug, an
outage. Callers answer 503 and retry later."""


def is_postgres(engine: AnyEngine) -> bool:
    return isinstance(engine, PostgresEngine)


async def open_engine(engine: AnyEngine, pool_size: int) -> None:
    """Open the connection pool (PostgreSQL) or set SQLite pragmas."""
    if isinstance(engine, PostgresEngine):
        await engine.start_connection_pool(min_size=1, max_size=pool_size)
    else:
        await engine.run_ddl("PRAGMA journal_mode=WAL")


async def close_engine(engine: AnyEngine) -> None:
    if isinstance(engine, PostgresEngine):
        await engine.close_connection_pool()


async def ping(engine: AnyEngine) -> None:
    """Raise if the database does not answer a trivial query."""
    rows: Any = await engine.run_ddl("SELECT 1 AS ok")
    if not rows:
        raise RuntimeError("database returned no row for SELECT 1")

"""Which engine the Piccolo tables use, and migrations at start."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import io
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from piccolo.apps.migrations.commands.forwards import run_forwards
from piccolo.apps.migrations.tables import Migration
from piccolo.conf.apps import Finder
from piccolo.table import Table

from switchboard.db.engine import AnyEngine, build_engine
from switchboard.settings import get_settings

ADVISORY_LOCK_ID = 7_262_024  # any constant shared by every Switchboard process
log = logging.getLogger(__name__)


class EngineSlot:
    """The engine Piccolo finds: ``switchboard.piccolo_conf`` answers ``DB`` from here (a
    module ``__getattr__``), so the app can open the database its settings name (the tests
    build apps on other databases) without assigning to Piccolo's configuration or tables."""

    engine: AnyEngine | None = None


def current_engine() -> AnyEngine:
    """The installed engine, or the one the process's settings name (Piccolo's CLI)."""
    if EngineSlot.engine is None:
        EngineSlot.engine = build_engine(get_settings().resolved_database_url)
    return EngineSlot.engine


def install_engine(engine: AnyEngine) -> None:
    """Make ``engine`` the one Piccolo uses: every registered table (and Piccolo's migration
    table) looks its engine up again with Piccolo's own ``refresh_db``."""
    EngineSlot.engine = engine
    tables: list[type[Table]] = [*Finder().get_table_classes(), Migration]
    for table in tables:
        table._meta.refresh_db()


@contextlib.asynccontextmanager
async def migration_lock(database_url: str) -> AsyncIterator[None]:
    """One process migrates at a time (several workers start together): a file lock beside
    the SQLite file, a PostgreSQL advisory lock otherwise."""
    if database_url.startswith("sqlite:///"):
        path = Path(database_url.removeprefix("sqlite:///")).with_suffix(".migrate.lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as handle:
            await asyncio.to_thread(fcntl.flock, handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    import asyncpg

    connection = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
    try:
        await connection.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_ID)
        try:
            yield
        finally:
            await connection.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_ID)
    finally:
        await connection.close()


async def migrate(database_url: str) -> None:
    """Apply every pending migration of every app (idempotent, one process at a time).

    Piccolo prints its progress; it goes to the log as one line so stdout stays JSON lines.
    """
    printed = io.StringIO()
    async with migration_lock(database_url):
        with contextlib.redirect_stdout(printed):
            result = await run_forwards("all")
    if not result.success:
        raise RuntimeError(f"database migration failed: {result.message}\n{printed.getvalue()}")
    ran = [line.strip() for line in printed.getvalue().splitlines() if "[forwards]" in line]
    log.info("database migrations applied", extra={"migrations": ran})

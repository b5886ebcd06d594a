"""Which engine the Piccolo tables use, and migrations at start."""

from __future__ import annotations

import contextlib
import io
import logging
import os

from piccolo.apps.migrations.commands.forwards import run_forwards
from piccolo.apps.migrations.tables import Migration
from piccolo.conf.apps import Finder
from piccolo.table import Table

from switchboard.db.engine import AnyEngine

CONF_MODULE = "switchboard.piccolo_conf"
log = logging.getLogger(__name__)


def install_engine(engine: AnyEngine) -> None:
    """Make ``engine`` the one Piccolo uses: the conf's ``DB`` and every registered table."""
    os.environ.setdefault("PICCOLO_CONF", CONF_MODULE)
    from switchboard import piccolo_conf

    piccolo_conf.DB = engine
    tables: list[type[Table]] = [*Finder().get_table_classes(), Migration]
    for table in tables:
        table._meta.db = engine


async def migrate() -> None:
    """Apply every pending migration of every app (idempotent).

    Piccolo prints its progress; it goes to the log as one line so stdout stays JSON lines.
    """
    os.environ.setdefault("PICCOLO_CONF", CONF_MODULE)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = await run_forwards("all")
    if not result.success:
        raise RuntimeError(f"database migration failed: {result.message}\n{printed.getvalue()}")
    ran = [line.strip() for line in printed.getvalue().splitlines() if "[forwards]" in line]
    log.info("database migrations applied", extra={"migrations": ran})

"""A throwaway PostgreSQL server (Debian's binaries) in a temporary folder, on a free port; and
the fixtures every test on PostgreSQL uses: one server per run, a fresh database per test."""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.live import free_port

TEST_TIMEZONE = "Pacific/Kiritimati"
"""The tests' server's zone (UTC+14): a query that took the session's zone for UTC gets the
wrong day on it, as it would on a production server set to local time."""


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError("PostgreSQL is not installed (make system-deps installs it)")


class PostgresServer:
    def __init__(self, base: Path, timezone: str = "UTC") -> None:
        self.base = base
        self.timezone = timezone
        self.data = base / "data"
        self.port = free_port()
        self.bindir = _bindir()

    @property
    def url(self) -> str:
        return self.url_of("postgres")

    def url_of(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database on this server; its URL."""
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.url_of(name)

    def _run(self, *args: str, check: bool = True) -> int:
        command = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, timeout=120).returncode

    def running(self) -> bool:
        return (
            self.data.exists()
            and self._run("pg_ctl", "-D", str(self.data), "status", check=False) == 0
        )

    def start(self) -> PostgresServer:
        self.base.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")
        if not self.data.exists():
            self._run(
                "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
            )
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off "
            f"-c TimeZone={self.timezone}"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.base / "log"),
            "-w",
            "start",
        )
        return self

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


@dataclass(frozen=True)
class PostgresDatabase:
    """One test's own database on the run's server."""

    server: PostgresServer
    name: str

    @property
    def url(self) -> str:
        return self.server.url_of(self.name)


_databases = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL for the run, started when a test first needs it. A test that stops it
    (marked ``disruptive``: it runs last) starts it again."""
    # Not under pytest's tmp folder: that one is private to root, and postgres runs as its user.
    base = Path(tempfile.mkdtemp(prefix="switchboard-pg-"))
    server = PostgresServer(base, timezone=TEST_TIMEZONE).start()
    try:
        yield server
    finally:
        if server.running():
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres(postgres_server: PostgresServer) -> PostgresDatabase:
    """A fresh, empty database for this test (the app migrates it when it starts)."""
    if not postgres_server.running():  # a test that stopped it failed before starting it again
        postgres_server.start()
    name = f"test_{os.getpid()}_{next(_databases)}"
    postgres_server.create_database(name)
    return PostgresDatabase(postgres_server, name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """Runs the test on each database: None (the settings' default, a SQLite file in the
    test's folder), then a fresh PostgreSQL database's URL."""
    if request.param == "sqlite":
        return None
    database: PostgresDatabase = request.getfixturevalue("postgres")
    return database.url

"""The app on a real PostgreSQL: migrations at start, readiness follows the database."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from switchboard.accounts.tables import User
from tests.integration.conftest import AppFactory
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.postgres


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    # Not under pytest's tmp folder: that one is private to root, and postgres runs as its user.
    base = Path(tempfile.mkdtemp(prefix="switchboard-pg-"))
    server = PostgresServer(base).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_app_runs_on_postgres_and_readiness_follows_it(
    live_app: AppFactory, postgres: PostgresServer
) -> None:
    app = live_app(database_url=postgres.url)
    assert httpx.get(f"{app.url}/readyz", timeout=10).status_code == 200

    # migrations ran: the users table exists in PostgreSQL and takes rows
    async def roundtrip() -> list[str]:
        await User.insert(User(username="pg-check"))
        return [row["username"] for row in await User.select(User.username)]

    assert app.run(roundtrip()) == ["pg-check"]
    answer = httpx.post(f"{app.url}/ask", data={"message": "Hi"}, timeout=120)
    assert answer.status_code == 200

    postgres.stop()
    response = httpx.get(f"{app.url}/readyz", timeout=10)
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("down")
    postgres.start()

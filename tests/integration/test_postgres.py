"""The app on a real PostgreSQL: migrations at start, readiness follows the database."""

from __future__ import annotations

import re

import httpx
import pytest

from switchboard.accounts.services import create_user
from switchboard.accounts.tables import User
from tests.conftest import WebFactory
from tests.integration.conftest import AppFactory
from tests.support.postgres import PostgresDatabase

pytestmark = pytest.mark.postgres


@pytest.mark.disruptive  # stops the run's PostgreSQL (and starts it again)
def test_app_runs_on_postgres_and_readiness_follows_it(
    live_app: AppFactory, postgres: PostgresDatabase, web: WebFactory
) -> None:
    app = live_app(database_url=postgres.url)
    assert httpx.get(f"{app.url}/readyz", timeout=10).status_code == 200

    # migrations ran: the users table exists in PostgreSQL and takes rows
    async def roundtrip() -> list[str]:
        await User.insert(User(username="pg-check"))
        return [row["username"] for row in await User.select(User.username)]

    assert app.run(roundtrip()) == ["pg-check"]
    # the workspace on PostgreSQL: sign in, chat (answer stored), search (ILIKE here)
    app.run(create_user("pg-user", password="pg-password"))
    session = web(app.url)
    assert session.sign_in("pg-user", "pg-password").status_code == 303
    conversation = session.new_conversation()
    sent = session.post(f"/chat/{conversation}/messages", {"content": "Hello PostgreSQL"})
    assert sent.status_code == 303
    assert 'class="body markdown"><p>' in session.get(f"/chat/{conversation}").text
    found = session.get("/chat/list?q=hello%20postgres", htmx=True).text
    # the model titles the conversation: the match is in the snippet, marked where it matched
    assert f'href="/chat/{conversation}"' in found
    assert "Hello PostgreSQL" in re.sub(r"<[^>]+>", "", found)

    postgres.server.stop()
    response = httpx.get(f"{app.url}/readyz", timeout=10)
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("down")
    postgres.server.start()

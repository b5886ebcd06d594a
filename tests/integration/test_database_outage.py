"""The database goes away under a running gateway: callers get a clear 503 in the right shape
(OpenAI's JSON on /v1, the error page in the workspace), never a 500, and it all comes back."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from switchboard.accounts.services import create_user
from switchboard.app import create_app
from tests.conftest import SettingsFactory, WebFactory, mint_key_in
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer
from tests.support.postgres import PostgresDatabase
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.disruptive]  # stops the run's PostgreSQL
CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}


def test_pages_and_the_api_answer_503_while_the_database_is_down(
    make_settings: SettingsFactory,
    fake_upstream: FakeUpstream,
    postgres: PostgresDatabase,
    web: WebFactory,
) -> None:
    settings = make_settings(database_url=postgres.url, key_cache_seconds=0.2)
    app = LiveServer(create_app(settings, upstream_transport=fake_upstream.transport())).start()
    api = httpx.Client(base_url=app.url, timeout=30)
    try:
        app.run(create_user("dora", password="dora-password-1"))  # pragma: allowlist secret
        secret = app.run(mint_key_in(app.app, "dora"))
        session = web(app.url)
        assert session.sign_in("dora", "dora-password-1").status_code == 303
        api.headers["Authorization"] = f"Bearer {secret}"
        assert api.post("/v1/chat/completions", json=CHAT).status_code == 200

        postgres.server.stop()
        try:
            time.sleep(0.5)  # past the key cache: the next request must ask the database
            answer = api.post("/v1/chat/completions", json=CHAT)
            assert answer.status_code == 503, answer.text
            error = answer.json()["error"]
            assert (error["type"], error["code"]) == ("server_error", "service_unavailable")
            assert "database" in error["message"]
            assert int(answer.headers["retry-after"]) > 0
            page = session.get("/")
            assert page.status_code == 503
            assert re.search(r"<h1>[^<]*unavailable</h1>", page.text), page.text
            assert page.headers["x-request-id"] in page.text
            assert int(page.headers["retry-after"]) > 0
            assert "Traceback" not in page.text
            assert session.get("/chat/list", htmx=True).status_code == 503
        finally:
            postgres.server.start()
        # back without a restart of the gateway
        wait_for(
            lambda: api.post("/v1/chat/completions", json=CHAT).status_code == 200,
            "the API came back",
            every=0.5,
        )
        back = session.get("/")  # still signed in: on to the chat, not to the sign-in page
        assert (back.status_code, back.headers["location"]) == (303, "/chat")
    finally:
        api.close()
        app.stop()

"""Sessions live in Redis when it is configured: with Redis down, the workspace answers a friendly
503 page (counted in ``switchboard_shared_state_errors_total{feature="sessions"}``), never a 500
or a stack trace; pages that need no session still work, and ``/v1`` (no sessions) is not
affected. A real redis-server of the test's own is started, then stopped."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import REGISTRY

from switchboard.accounts.services import create_user
from switchboard.app import create_app
from tests.conftest import SettingsFactory, WebFactory, mint_key_in
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer, free_port
from tests.support.redis_server import RedisServer

PASSWORD = "pw-long-enough"  # pragma: allowlist secret


def start_app(
    redis_url: str, make_settings: SettingsFactory, fake_upstream: FakeUpstream
) -> LiveServer:
    settings = make_settings(redis_url=redis_url, redis_timeout=0.5)
    return LiveServer(create_app(settings, upstream_transport=fake_upstream.transport())).start()


@pytest.fixture
def live(
    own_redis: RedisServer, make_settings: SettingsFactory, fake_upstream: FakeUpstream
) -> Iterator[LiveServer]:
    server = start_app(own_redis.url, make_settings, fake_upstream)
    try:
        yield server
    finally:
        server.stop()


def session_errors() -> float:
    labels = {"feature": "sessions"}
    return REGISTRY.get_sample_value("switchboard_shared_state_errors_total", labels) or 0.0


def assert_friendly_503(response: httpx.Response) -> None:
    assert response.status_code == 503, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("text/html")
    assert "Sign-in is unavailable" in response.text
    assert "Traceback" not in response.text
    assert "request id" in response.text
    assert response.headers["retry-after"] == "30"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_signing_in_with_redis_down_is_a_friendly_503(
    live: LiveServer, own_redis: RedisServer, web: WebFactory
) -> None:
    live.run(create_user("ann", password=PASSWORD))
    ann, visitor = web(live.url), web(live.url)
    assert ann.sign_in("ann", PASSWORD).status_code == 303
    assert ann.get("/chat").status_code == 200
    visitor.csrf()  # the sign-in page, while Redis is up
    secret = live.run(mint_key_in(live.app, "ann"))
    own_redis.stop()
    before = session_errors()

    assert_friendly_503(visitor.sign_in("ann", PASSWORD))  # writing the new session
    assert_friendly_503(ann.get("/chat"))  # reading a signed-in person's session
    assert_friendly_503(ann.post("/signout"))
    htmx = ann.get("/chat/list", htmx=True)
    assert htmx.status_code == 503
    assert session_errors() >= before + 3
    anonymous = httpx.get(f"{live.url}/signin")  # no session to read: the page works
    assert anonymous.status_code == 200
    assert 'name="password"' in anonymous.text
    assert httpx.get(f"{live.url}/chat").status_code == 303  # to sign in, as always
    wrong = visitor.sign_in("ann", "not-the-password")  # no session written: the usual answer
    assert wrong.status_code == 400
    # /v1 has no sessions: keys and completions go on
    models = httpx.get(f"{live.url}/v1/models", headers={"Authorization": f"Bearer {secret}"})
    assert models.status_code == 200


@pytest.fixture(params=["refuses", "hangs"])
def dead_redis_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A Redis address that refuses connections, or one that accepts and never answers (the
    client's timeout ends each call)."""
    if request.param == "refuses":
        yield f"redis://127.0.0.1:{free_port()}/0"
        return
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # connections wait in the backlog; nothing ever reads or answers
        yield f"redis://127.0.0.1:{silent.getsockname()[1]}/0"


def test_an_app_started_while_redis_is_unreachable_answers_503_pages(
    dead_redis_url: str,
    make_settings: SettingsFactory,
    fake_upstream: FakeUpstream,
    web: WebFactory,
) -> None:
    server = start_app(dead_redis_url, make_settings, fake_upstream)
    try:
        server.run(create_user("ann", password=PASSWORD))
        visitor = web(server.url)
        assert_friendly_503(visitor.sign_in("ann", PASSWORD))
        as_json = visitor.http.post(
            "/signin",
            data={"username": "ann", "password": PASSWORD},
            headers={"x-csrftoken": visitor.csrf(), "accept": "application/json"},
        )
        assert as_json.status_code == 503
        assert "unavailable" in as_json.json()["detail"]
    finally:
        server.stop()

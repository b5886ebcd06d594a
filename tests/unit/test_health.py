from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from litestar.types import Receive, Scope, Send

from tests.support.fake_upstream import FakeUpstream


async def test_liveness_answers_without_dependencies(client: AsyncTestClient[Any]) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert len(response.headers["x-request-id"]) == 32


async def test_readiness_is_200_when_database_and_model_server_answer(
    client: AsyncTestClient[Any],
) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "model_server http://upstream.test/v1": "ok"},
    }


async def test_readiness_is_503_naming_the_model_server_when_it_is_down(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    fake_upstream.healthy = False
    response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["model_server http://upstream.test/v1"].startswith("unreachable")
    fake_upstream.healthy = True
    assert (await client.get("/readyz")).status_code == 200


async def test_a_sane_incoming_request_id_is_kept(client: AsyncTestClient[Any]) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "trace-1234567"})
    assert response.headers["x-request-id"] == "trace-1234567"
    response = await client.get("/healthz", headers={"X-Request-ID": "bad id\n"})
    assert response.headers["x-request-id"] != "bad id\n"


METRICS_TOKEN = "scrape-secret-for-readyz"


class TestReadinessDetailsNeedTheMetricsToken:
    @pytest.fixture
    def app_overrides(self) -> dict[str, Any]:
        return {"metrics_token": METRICS_TOKEN}

    async def test_other_callers_learn_only_the_status(
        self, client: AsyncTestClient[Any], fake_upstream: FakeUpstream
    ) -> None:
        ready = await client.get("/readyz")  # the client sends an API key, not the metrics token
        assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
        fake_upstream.healthy = False
        down = await client.get("/readyz", headers={"Authorization": "Bearer wrong-token"})
        assert (down.status_code, down.json()) == (503, {"status": "unavailable"})
        assert "upstream.test" not in down.text
        fake_upstream.healthy = True

    async def test_the_metrics_token_shows_the_checks(
        self, client: AsyncTestClient[Any], fake_upstream: FakeUpstream
    ) -> None:
        fake_upstream.healthy = False
        auth = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        response = await client.get("/readyz", headers=auth)
        assert response.status_code == 503
        checks = response.json()["checks"]
        assert checks["database"] == "ok"
        assert checks["model_server http://upstream.test/v1"].startswith("unreachable")
        fake_upstream.healthy = True


async def test_without_a_token_only_loopback_callers_see_the_checks(
    client: AsyncTestClient[Any],
) -> None:
    app = client.app.api  # the probes are the API app's
    inner = app.asgi_handler

    async def from_elsewhere(scope: Scope, receive: Receive, send: Send) -> None:
        scope["client"] = ("203.0.113.9", 40000)
        await inner(scope, receive, send)

    app.asgi_handler = from_elsewhere
    try:
        response = await client.get("/readyz")
    finally:
        app.asgi_handler = inner
    assert (response.status_code, response.json()) == (200, {"status": "ready"})
    assert "checks" in (await client.get("/readyz")).json()  # the test client is loopback


async def test_readiness_follows_redis_when_it_holds_the_shared_state(
    make_settings: Any, fake_upstream: FakeUpstream, redis_url: str
) -> None:
    """With Redis configured, sessions, limits and the throttle live there: a gateway that
    cannot reach it is not ready (and says so to the callers that may see the checks)."""
    import redis as redis_sync

    from switchboard.app import create_app
    from tests.support.live import free_port

    live = create_app(
        make_settings(redis_url=redis_url), upstream_transport=fake_upstream.transport()
    )
    async with AsyncTestClient(app=live) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["redis"] == "ok"
    with redis_sync.Redis.from_url(redis_url) as admin:
        assert admin.ping()
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    down = create_app(make_settings(redis_url=dead), upstream_transport=fake_upstream.transport())
    async with AsyncTestClient(app=down) as client:
        refused = await client.get("/readyz")
        assert refused.status_code == 503
        assert refused.json()["checks"]["redis"].startswith("down")

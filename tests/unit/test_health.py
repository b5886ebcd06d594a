from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from litestar.types import Receive, Scope, Send

from switchboard.app import create_app
from tests.conftest import SettingsFactory, mint_key
from tests.support.fake_upstream import MODEL, FakeUpstream


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
        "checks": {"database": "ok", f"model {MODEL}": "ok"},
        "model_servers": {"http://upstream.test/v1": "ok"},
    }


async def test_readiness_is_503_naming_the_model_and_its_server_when_it_is_down(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    fake_upstream.healthy = False
    response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"][f"model {MODEL}"].startswith("down")
    assert body["model_servers"]["http://upstream.test/v1"] == "unreachable: ConnectError"
    fake_upstream.healthy = True
    assert (await client.get("/readyz")).status_code == 200


class Servers:
    """Model servers behind one transport, told apart by host."""

    def __init__(self, **servers: FakeUpstream) -> None:
        self.servers = {f"{host}.test": server for host, server in servers.items()}

    async def handle(self, request: httpx.Request) -> httpx.Response:
        return await self.servers[request.url.host].handle(request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


async def readyz(make_settings: SettingsFactory, servers: Servers) -> httpx.Response:
    urls = ",".join(f"http://{host}/v1" for host in servers.servers)
    settings = make_settings(upstream_urls=urls, upstream_health_interval=3600)
    async with AsyncTestClient(create_app(settings, upstream_transport=servers.transport())) as c:
        return await c.get("/readyz")


async def test_one_of_two_servers_of_a_model_down_keeps_the_gateway_ready(
    make_settings: SettingsFactory,
) -> None:
    """A replica down is a loss of capacity, not an outage: were every gateway unready, the
    load balancer would have no gateway left to send anyone to."""
    servers = Servers(a=FakeUpstream(), b=FakeUpstream())
    servers.servers["a.test"].healthy = False
    ready = await readyz(make_settings, servers)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", f"model {MODEL}": "ok"}
    assert ready.json()["model_servers"] == {
        "http://a.test/v1": "unreachable: ConnectError",
        "http://b.test/v1": "ok",
    }
    servers.servers["b.test"].healthy = False
    assert (await readyz(make_settings, servers)).status_code == 503


async def test_a_model_whose_only_server_is_down_makes_the_gateway_unready(
    make_settings: SettingsFactory,
) -> None:
    servers = Servers(a=FakeUpstream(models=("one",)), b=FakeUpstream(models=("two",)))
    async with AsyncTestClient(
        create_app(
            make_settings(
                upstream_urls="http://a.test/v1,http://b.test/v1", upstream_health_interval=3600
            ),
            upstream_transport=servers.transport(),
        )
    ) as client:
        assert (await client.get("/readyz")).status_code == 200
        servers.servers["b.test"].healthy = False  # "two" was seen, then its server went
        down = await client.get("/readyz")
    assert down.status_code == 503
    assert down.json()["checks"]["model one"] == "ok"
    assert down.json()["checks"]["model two"] == "down: none of its 1 model server(s) answers"


class Router(FakeUpstream):
    """vLLM's router (vllm-router 0.1.17, as measured): ``/health`` is 503 as soon as one
    replica behind it is down, ``/readiness`` and ``/v1/models`` answer while one is up, 503
    when none is. ``models_to_dead_replica``: the seconds before its health checks notice a
    replica that died, when it forwards ``/v1/models`` there and answers 500."""

    replicas_up: int = 1
    replicas: int = 2
    models_to_dead_replica: bool = False

    async def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/health" and self.replicas_up < self.replicas:
            return httpx.Response(503, text='Unhealthy servers: ["http://vllm-1:8000"]')
        if path in ("/readiness", "/v1/models") and not self.replicas_up:
            return httpx.Response(503, text="No workers are currently available")
        if path == "/readiness":
            return httpx.Response(200, json={"status": "ready", "healthy_workers": 1})
        if path == "/v1/models" and self.models_to_dead_replica:
            return httpx.Response(500, text="error sending request for url")
        return await super().handle(request)


async def test_a_router_with_one_replica_down_keeps_the_gateway_ready(
    make_settings: SettingsFactory,
) -> None:
    router = Router()
    ready = await readyz(make_settings, Servers(router=router))
    assert ready.status_code == 200, ready.text
    assert ready.json()["model_servers"] == {"http://router.test/v1": "ok"}
    router.replicas_up = 0
    down = await readyz(make_settings, Servers(router=router))
    assert down.status_code == 503
    assert down.json()["model_servers"] == {
        "http://router.test/v1": "status 503 (the router has no healthy replica)"
    }


async def test_a_router_forwarding_the_model_list_to_a_dead_replica_stays_in_rotation(
    make_settings: SettingsFactory,
) -> None:
    """Measured by make test-scale: a replica killed, and for some seconds the router sends
    /v1/models there (500) while it serves completions from the other. Its own /readiness
    decides: the gateway neither refuses requests (503) nor turns unready meanwhile."""
    router = Router()
    settings = make_settings(upstream_urls="http://router.test/v1", upstream_health_interval=3600)
    app = create_app(settings, upstream_transport=Servers(router=router).transport())
    async with AsyncTestClient(app) as client:
        client.headers["Authorization"] = "Bearer " + await mint_key(client, "router")
        router.models_to_dead_replica = True
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        chat = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
        assert (await client.post("/v1/chat/completions", json=chat)).status_code == 200
        assert [m["id"] for m in (await client.get("/v1/models")).json()["data"]] == [MODEL]


async def test_a_model_server_refusing_our_api_key_is_not_a_path(
    make_settings: SettingsFactory,
) -> None:
    refusing = FakeUpstream(fail_with=(401, {"error": "Unauthorized"}))

    async def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(401, json={"error": "Unauthorized"})
        return await refusing.handle(request)

    settings = make_settings(upstream_health_interval=3600)
    app = create_app(settings, upstream_transport=httpx.MockTransport(handle))
    async with AsyncTestClient(app) as client:
        down = await client.get("/readyz")
    assert down.status_code == 503
    assert down.json()["checks"]["models"] == "down: no model server has listed a model yet"
    assert down.json()["model_servers"] == {"http://upstream.test/v1": "status 401"}


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
        body = response.json()
        assert body["checks"]["database"] == "ok"
        assert body["model_servers"]["http://upstream.test/v1"].startswith("unreachable")
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

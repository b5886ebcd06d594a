"""The upstream pool: discovery, round-robin, ejection, safe retries, timeouts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from switchboard.app import create_app
from tests.conftest import SettingsFactory, mint_key
from tests.support.fake_upstream import FakeUpstream

CHAT = "/v1/chat/completions"
BODY = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}


class TwoUpstreams:
    """Two model servers behind one transport, told apart by host."""

    def __init__(self) -> None:
        self.servers = {"a.test": FakeUpstream(), "b.test": FakeUpstream()}

    async def handle(self, request: httpx.Request) -> httpx.Response:
        return await self.servers[request.url.host].handle(request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


@pytest.fixture
def upstreams() -> TwoUpstreams:
    return TwoUpstreams()


@pytest.fixture
async def pair(
    make_settings: SettingsFactory, upstreams: TwoUpstreams
) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = make_settings(
        upstream_urls="http://a.test/v1,http://b.test/v1", upstream_health_interval=3600
    )
    app = create_app(settings, upstream_transport=upstreams.transport())
    async with AsyncTestClient(app=app) as client:
        client.headers["Authorization"] = "Bearer " + await mint_key(client, "rr")
        yield client


async def test_requests_go_round_robin(pair: AsyncTestClient[Any], upstreams: TwoUpstreams) -> None:
    for _ in range(6):
        assert (await pair.post(CHAT, json=BODY)).status_code == 200
    assert [len(s.requests) for s in upstreams.servers.values()] == [3, 3]


async def test_a_server_that_refuses_connections_is_skipped_and_ejected(
    pair: AsyncTestClient[Any], upstreams: TwoUpstreams
) -> None:
    upstreams.servers["a.test"].healthy = False
    for _ in range(4):
        assert (await pair.post(CHAT, json=BODY)).status_code == 200  # retried on b
    assert len(upstreams.servers["b.test"].requests) == 4
    pool = pair.app.state.resources.pool
    assert [s.healthy for s in pool.servers] == [False, True]
    upstreams.servers["a.test"].healthy = True
    await pool.refresh()  # the periodic probe brings it back
    assert [s.healthy for s in pool.servers] == [True, True]


async def test_all_servers_down_is_503(pair: AsyncTestClient[Any], upstreams: TwoUpstreams) -> None:
    for server in upstreams.servers.values():
        server.healthy = False
    response = await pair.post(CHAT, json=BODY)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "model_unavailable"
    # the last server of a model is never ejected by a request; the probe takes it out
    await pair.app.state.resources.pool.refresh()
    assert (await pair.post(CHAT, json=BODY)).status_code == 503
    # known model, servers down: retrieve is 503 too, not 404
    assert (await pair.get("/v1/models/fake-model")).status_code == 503


class Failing(FakeUpstream):
    """Accepts the connection, then fails in the given way."""

    error: type[httpx.HTTPError] = httpx.ReadTimeout

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/completions"):
            self.requests.append({})
            raise self.error("boom", request=request)
        return await super().handle(request)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [(httpx.ReadTimeout, 504, "timeout"), (httpx.RemoteProtocolError, 502, "upstream_error")],
)
async def test_failures_after_sending_are_not_retried(
    make_settings: SettingsFactory, error: type[httpx.HTTPError], status: int, code: str
) -> None:
    failing = Failing()
    failing.error = error
    app = create_app(make_settings(), upstream_transport=failing.transport())
    async with AsyncTestClient(app=app) as client:
        client.headers["Authorization"] = "Bearer " + await mint_key(client, "t")
        response = await client.post(CHAT, json=BODY)
        assert response.status_code == status
        assert response.json()["error"]["code"] == code
        assert len(failing.requests) == 1  # the generation may have started: never sent twice

"""The upstream pool: discovery, round-robin, ejection, safe retries, timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from switchboard.app import create_app
from switchboard.gateway.probing import DROP_AFTER
from switchboard.gateway.upstream import UpstreamPool
from tests.conftest import SettingsFactory, mint_key
from tests.support.fake_upstream import FakeUpstream
from tests.support.waiting import wait_for_async

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
    # the probes take one out; the last of the model stays (a blip must not be a 503 for
    # everyone): tried, and refused with the reason; the model stays listed meanwhile
    pool = pair.app.state.resources.pool
    for _ in range(DROP_AFTER):
        await pool.refresh()
    assert [s.healthy for s in pool.servers].count(True) == 1
    refused = await pair.post(CHAT, json=BODY)
    assert refused.status_code == 503
    assert "connect failed" in refused.json()["error"]["message"]
    assert (await pair.get("/v1/models/fake-model")).status_code == 200


class Failing(FakeUpstream):
    """Accepts the connection, then fails in the given way."""

    error: type[httpx.RequestError] = httpx.ReadTimeout

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
    make_settings: SettingsFactory, error: type[httpx.RequestError], status: int, code: str
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


class RawUpstream:
    """A model server on a real socket (the pool's aiohttp transport underneath): it lists the
    model; completions are answered, or (``drop``) read in full and the connection closed with
    no answer — the request reached the server, which may be generating."""

    def __init__(self, drop: bool) -> None:
        self.drop = drop
        self.completions = 0
        self.server: asyncio.Server | None = None
        # its own loop in a thread: the test client blocks the test's loop while it starts
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> str:
        self.thread.start()

        async def listen() -> asyncio.Server:
            return await asyncio.start_server(self.serve, "127.0.0.1", 0)

        self.server = asyncio.run_coroutine_threadsafe(listen(), self.loop).result(60)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode()
            length = re.search(r"content-length: (\d+)", head, re.IGNORECASE)
            if length:
                await reader.readexactly(int(length.group(1)))
            if head.startswith("GET"):
                body = json.dumps({"object": "list", "data": [{"id": "fake-model", "created": 1}]})
            else:
                self.completions += 1
                if self.drop:
                    return  # the request arrived; the connection drops without an answer
                body = json.dumps(
                    {
                        "id": "c",
                        "object": "chat.completion",
                        "created": 1,
                        "model": "fake-model",
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": "ok"},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                )
            writer.write(
                f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                f"{len(body)}\r\nconnection: close\r\n\r\n{body}".encode()
            )
            await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def stop(self) -> None:
        assert self.server is not None
        server = self.server

        async def close() -> None:
            server.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(60)
        self.loop.close()


async def test_a_connection_lost_after_the_request_was_sent_is_not_retried(
    make_settings: SettingsFactory,
) -> None:
    dropping, answering = RawUpstream(drop=True), RawUpstream(drop=False)
    urls = f"{dropping.start()},{answering.start()}"
    try:
        app = create_app(make_settings(upstream_urls=urls, upstream_health_interval=3600))
        async with AsyncTestClient(app=app) as client:
            client.headers["Authorization"] = "Bearer " + await mint_key(client, "once")
            statuses = sorted([(await client.post(CHAT, json=BODY)).status_code for _ in "ab"])
            pool = client.app.state.resources.pool
            healthy = [server.healthy for server in pool.servers]
    finally:
        dropping.stop()
        answering.stop()
    # round-robin: one request each; the dropped one is a 502, never sent again elsewhere
    assert statuses == [200, 502]
    assert (dropping.completions, answering.completions) == (1, 1)
    assert healthy == [True, True]  # not ejected: it was reachable


async def test_the_last_server_of_a_model_is_not_ejected_by_one_failed_connect(
    make_settings: SettingsFactory, fake_upstream: FakeUpstream
) -> None:
    refusals = [1]

    async def refuse_once(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and refusals:
            refusals.pop()
            raise httpx.ConnectError("connection refused", request=request)
        return await fake_upstream.handle(request)

    settings = make_settings(upstream_health_interval=3600, upstream_connect_retries=0)
    app = create_app(settings, upstream_transport=httpx.MockTransport(refuse_once))
    async with AsyncTestClient(app=app) as client:
        client.headers["Authorization"] = "Bearer " + await mint_key(client, "blip")
        assert (await client.post(CHAT, json=BODY)).status_code == 503  # no retry asked for
        assert (await client.post(CHAT, json=BODY)).status_code == 200  # still in rotation


@pytest.mark.parametrize("stream", [False, True])
async def test_a_connect_blip_of_the_only_server_is_ridden_out_by_the_retries(
    make_settings: SettingsFactory, fake_upstream: FakeUpstream, stream: bool
) -> None:
    """No server took the request (a router restarting, a network stalled for a moment): the
    route is tried again after a pause, so the caller gets the answer, not a 503."""
    refusals = [httpx.ConnectTimeout, httpx.ConnectError]
    completions = []

    async def refuse_twice(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/completions"):
            if refusals:
                raise refusals.pop()("no route to the server", request=request)
            completions.append(request)
        return await fake_upstream.handle(request)

    settings = make_settings(upstream_health_interval=3600, upstream_connect_retries=2)
    app = create_app(settings, upstream_transport=httpx.MockTransport(refuse_twice))
    async with AsyncTestClient(app=app) as client:
        client.headers["Authorization"] = "Bearer " + await mint_key(client, "blip")
        response = await client.post(CHAT, json={**BODY, "stream": stream})
        assert response.status_code == 200, response.text
        assert len(completions) == 1  # sent once it could be: never twice


async def test_retries_end_in_a_503_when_no_server_comes_back(
    make_settings: SettingsFactory, fake_upstream: FakeUpstream
) -> None:
    attempts = []

    async def refuse(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/completions"):
            attempts.append(request)
            raise httpx.ConnectError("connection refused", request=request)
        return await fake_upstream.handle(request)

    settings = make_settings(upstream_health_interval=3600, upstream_connect_retries=1)
    app = create_app(settings, upstream_transport=httpx.MockTransport(refuse))
    async with AsyncTestClient(app=app) as client:
        client.headers["Authorization"] = "Bearer " + await mint_key(client, "down")
        response = await client.post(CHAT, json=BODY)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "model_unavailable"
        assert len(attempts) == 2  # the first round and one retry


async def answered_after_refusals(
    make_settings: SettingsFactory,
    fake_upstream: FakeUpstream,
    refusals: list[httpx.Response],
    retries: int,
    stream: bool = False,
) -> tuple[httpx.Response, int, bool]:
    """One completion through a server that first answers ``refusals`` (in order), then as
    the fake model does: the caller's response, how many completions the server saw, and
    whether it is still in rotation."""
    completions = []

    async def refusing(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/completions"):
            completions.append(request)
            if len(completions) <= len(refusals):
                return refusals[len(completions) - 1]
        return await fake_upstream.handle(request)

    settings = make_settings(upstream_health_interval=3600, upstream_connect_retries=retries)
    app = create_app(settings, upstream_transport=httpx.MockTransport(refusing))
    async with AsyncTestClient(app=app) as client:
        client.headers["Authorization"] = "Bearer " + await mint_key(client, "refused")
        response = await client.post(CHAT, json={**BODY, "stream": stream})
        healthy = client.app.state.resources.pool.servers[0].healthy
    return response, len(completions), healthy


@pytest.mark.parametrize("stream", [False, True])
async def test_a_503_from_the_only_server_is_tried_again_like_a_refused_connect(
    make_settings: SettingsFactory, fake_upstream: FakeUpstream, stream: bool
) -> None:
    """A router with no replica in rotation for a moment (its circuit breaker open after a
    network blip) answers 503 before any generation ran: the route is tried again after a
    pause, as when no server took the connection, so the caller gets the answer."""
    busy = httpx.Response(503, json={"message": "No available workers"})
    response, sent, healthy = await answered_after_refusals(
        make_settings, fake_upstream, [busy, busy], retries=2, stream=stream
    )
    assert response.status_code == 200, response.text
    assert sent == 3  # two 503s, then the answer
    assert healthy  # not ejected for it: it answers


async def test_503s_that_outlast_the_retries_end_in_a_503_with_the_servers_reason(
    make_settings: SettingsFactory, fake_upstream: FakeUpstream
) -> None:
    busy = httpx.Response(503, json={"error": {"message": "No available workers"}})
    response, sent, _ = await answered_after_refusals(
        make_settings, fake_upstream, [busy] * 5, retries=1
    )
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "model_unavailable"
    assert "No available workers" in error["message"]
    assert response.headers["retry-after"]
    assert sent == 2  # the first round and one retry


async def test_a_500_from_the_server_is_not_tried_again(
    make_settings: SettingsFactory, fake_upstream: FakeUpstream
) -> None:
    """A 500 may come after the generation ran: sending the request again could run it twice."""
    failed = httpx.Response(500, json={"error": {"message": "engine died"}})
    response, sent, _ = await answered_after_refusals(
        make_settings, fake_upstream, [failed], retries=2
    )
    assert response.status_code == 502, response.text
    assert sent == 1


async def test_readiness_and_serving_agree_when_the_model_comes_back(
    pair: AsyncTestClient[Any], upstreams: TwoUpstreams
) -> None:
    """/readyz probes the servers live; a server it finds back is used at once, not after the
    next periodic probe (an hour in this fixture): ready means this worker serves."""
    for server in upstreams.servers.values():
        server.healthy = False
    pool = pair.app.state.resources.pool
    await pool.refresh()
    assert (await pair.post(CHAT, json=BODY)).status_code == 503
    for server in upstreams.servers.values():
        server.healthy = True
    assert (await pair.get("/readyz")).status_code == 200
    assert (await pair.post(CHAT, json=BODY)).status_code == 200


@asynccontextmanager
async def one_server_rarely_probed(
    make_settings: SettingsFactory, fake_upstream: FakeUpstream
) -> AsyncIterator[tuple[AsyncTestClient[Any], UpstreamPool]]:
    """The app in front of ``fake_upstream`` alone, probed once an hour (no probe comes during
    the test unless it asks for one), and a client with a key."""
    settings = make_settings(upstream_health_interval=3600)
    app = create_app(settings, upstream_transport=fake_upstream.transport())
    async with AsyncTestClient(app=app) as client:
        client.headers["Authorization"] = "Bearer " + await mint_key(client, "alone")
        yield client, client.app.state.resources.pool


async def test_a_refusal_for_want_of_servers_rechecks_them_soon(
    make_settings: SettingsFactory, fake_upstream: FakeUpstream
) -> None:
    """No server in rotation (down since the start): the 503 schedules a recheck, so the
    server's return is noticed long before the periodic probe (an hour here) without any
    readiness probe."""
    fake_upstream.healthy = False
    async with one_server_rarely_probed(make_settings, fake_upstream) as (client, pool):
        fake_upstream.healthy = True
        assert not any(s.healthy for s in pool.servers)
        refused = await client.post(CHAT, json=BODY)  # still believed down
        assert refused.status_code == 503, refused.text

        async def rechecked() -> bool:
            return any(s.healthy for s in pool.servers)

        await wait_for_async(rechecked, "a recheck was scheduled", every=0.05)
        assert (await client.post(CHAT, json=BODY)).status_code == 200


async def test_failed_probes_never_take_the_last_server_of_a_model_out_of_rotation(
    make_settings: SettingsFactory, fake_upstream: FakeUpstream
) -> None:
    """Seen by make test-scale, twice: the container network stalled a gateway's connections to
    the router for a few seconds (or the router, its CPU starved, said for a moment that no
    replica was healthy), the probes failed, and the gateway answered 503 "no model server is
    answering" to everyone, without trying, until a probe saw the router back. /readyz follows
    every probe; serving keeps the last server of a model (as a failed request does): its
    requests fail on their own if it is really gone, after the connect retries, with the
    reason, and are answered as soon as it is back."""
    async with one_server_rarely_probed(make_settings, fake_upstream) as (client, pool):
        fake_upstream.healthy = False
        for _ in range(DROP_AFTER + 1):
            await pool.refresh()
        assert (await client.get("/readyz")).status_code == 503  # readiness: down at once
        down = await client.post(CHAT, json=BODY)  # tried, and refused with the reason
        assert down.status_code == 503, down.text
        assert "connect failed" in down.json()["error"]["message"]
        fake_upstream.healthy = True
        back = await client.post(CHAT, json=BODY)  # no probe needed to be served again
        assert back.status_code == 200, back.text
        assert (await client.get("/readyz")).status_code == 200

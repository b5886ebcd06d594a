"""An upstream given as a DNS name stands for each of its addresses, looked up again at every
probe round: replicas that come and go (a scaled compose service, a headless Service) join and
leave the pool without a restart, each probed and balanced on its own, the name kept in Host.

The model servers here are real sockets on loopback addresses (127.0.0.1, .2, .3: the whole of
127/8 is local) behind the pool's real aiohttp transport; the name's answers come from a
resolver the test controls, as a DNS server would give them."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from switchboard.gateway.discovery import host_header, lookup, name_to_resolve, with_address
from switchboard.gateway.errors import GatewayError
from switchboard.gateway.upstream import UpstreamPool
from tests.conftest import SettingsFactory
from tests.support.live import free_port

MODEL = "fake-model"
NAME = "replicas.test"


@dataclass
class Replica:
    """A model server on one loopback address: lists the model, answers completions, and
    remembers the Host header of each request."""

    address: str
    hosts: list[str] = field(default_factory=list)
    completions: int = 0
    runner: web.AppRunner | None = None

    async def models(self, request: web.Request) -> web.Response:
        self.hosts.append(request.headers["Host"])
        return web.json_response({"object": "list", "data": [{"id": MODEL, "created": 1}]})

    async def complete(self, request: web.Request) -> web.Response:
        self.hosts.append(request.headers["Host"])
        self.completions += 1
        await request.read()
        return web.json_response({"id": "c", "object": "chat.completion", "created": 1})

    async def start(self, port: int) -> None:
        app = web.Application()
        app.router.add_get("/v1/models", self.models)
        app.router.add_post("/v1/chat/completions", self.complete)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, self.address, port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


class Dns:
    """The name's answer, as the test sets it; ``failing`` plays a resolver that is down."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = list(addresses)
        self.failing = False
        self.asked: list[tuple[str, int]] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        if self.failing:
            raise OSError("Temporary failure in name resolution")
        return list(self.addresses)


@pytest.fixture
async def replicas() -> AsyncIterator[tuple[int, dict[str, Replica]]]:
    port = free_port()
    found = {address: Replica(address) for address in ("127.0.0.1", "127.0.0.2", "127.0.0.3")}
    for replica in found.values():
        await replica.start(port)
    yield port, found
    for replica in found.values():
        await replica.stop()


async def complete(pool: UpstreamPool) -> None:
    async with pool.open(MODEL, "/chat/completions", {"model": MODEL}) as response:
        assert response.status_code == 200
        await response.aread()


def addresses(pool: UpstreamPool) -> list[tuple[str | None, bool]]:
    return [(server.address, server.healthy) for server in pool.servers]


async def test_a_name_stands_for_each_of_its_addresses_and_follows_them(
    make_settings: SettingsFactory, replicas: tuple[int, dict[str, Replica]]
) -> None:
    port, found = replicas
    dns = Dns("127.0.0.1", "127.0.0.2")
    url = f"http://{NAME}:{port}/v1"
    pool = UpstreamPool(
        make_settings(upstream_urls=url, upstream_health_interval=3600), resolver=dns.resolve
    )
    await pool.start()
    try:
        assert dns.asked == [(NAME, port)]
        assert addresses(pool) == [("127.0.0.1", True), ("127.0.0.2", True)]
        for _ in range(4):
            await complete(pool)
        assert [found[a].completions for a in ("127.0.0.1", "127.0.0.2")] == [2, 2]
        # the requests still name the service, as a proxy in front of replicas may need
        assert {*found["127.0.0.1"].hosts, *found["127.0.0.2"].hosts} == {f"{NAME}:{port}"}
        readiness = await pool.readiness()
        assert readiness.servers == {f"{url} (127.0.0.1)": "ok", f"{url} (127.0.0.2)": "ok"}

        # a replica goes, another comes: at the next round, without a restart
        kept = pool.servers[1]
        dns.addresses = ["127.0.0.2", "127.0.0.3"]
        await pool.refresh()
        assert addresses(pool) == [("127.0.0.2", True), ("127.0.0.3", True)]
        assert pool.servers[0] is kept  # its state (health, models) carries on
        for _ in range(4):
            await complete(pool)
        assert [found[a].completions for a in found] == [2, 4, 2]

        # a failed lookup keeps the pool as it was: a DNS blip must not empty it
        dns.failing = True
        await pool.refresh()
        assert addresses(pool) == [("127.0.0.2", True), ("127.0.0.3", True)]
        assert (await pool.readiness()).ready
    finally:
        await pool.aclose()


async def test_a_new_address_knows_the_model_before_its_first_answer(
    make_settings: SettingsFactory, replicas: tuple[int, dict[str, Replica]]
) -> None:
    """While the only replica restarts under a new address that does not answer yet, the
    model is unavailable (503, try again), not unknown (404)."""
    port, found = replicas
    await found["127.0.0.3"].stop()
    dns = Dns("127.0.0.1")
    settings = make_settings(
        upstream_urls=f"http://{NAME}:{port}/v1", upstream_health_interval=3600
    )
    pool = UpstreamPool(settings, resolver=dns.resolve)
    await pool.start()
    try:
        dns.addresses = ["127.0.0.3"]  # nothing listens there
        await pool.refresh()
        assert addresses(pool) == [("127.0.0.3", False)]
        with pytest.raises(GatewayError) as refused:
            pool.servers_for(MODEL)
        assert refused.value.status == 503
        readiness = await pool.readiness()
        assert not readiness.ready
        assert readiness.checks == {f"model {MODEL}": "down: none of its 1 model server(s) answers"}
    finally:
        await pool.aclose()


async def test_addresses_and_https_names_are_used_as_they_are(
    make_settings: SettingsFactory,
) -> None:
    """Only http:// names are looked up: an address needs no lookup, and over https the
    certificate names the host, so the connection is made to the name."""
    dns = Dns("127.0.0.9")
    urls = "http://127.0.0.1:9/v1,https://models.example:8443/v1"
    pool = UpstreamPool(make_settings(upstream_urls=urls), resolver=dns.resolve)
    try:
        await pool.discovery.resolve()
        assert dns.asked == []
        assert [(s.base_url, s.address) for s in pool.servers] == [
            ("http://127.0.0.1:9/v1", None),
            ("https://models.example:8443/v1", None),
        ]
    finally:
        await pool.aclose()


async def test_the_system_resolver_gives_the_ipv4_addresses() -> None:
    assert await lookup("localhost", 80) == ["127.0.0.1"]
    with pytest.raises(socket.gaierror):
        await lookup("no-such-host.invalid", 80)


def test_urls_are_rewritten_to_an_address_keeping_the_port_and_path() -> None:
    assert name_to_resolve("http://vllm-router:8000/v1") == ("vllm-router", 8000)
    assert name_to_resolve("http://model/v1") == ("model", 80)
    assert name_to_resolve("http://[::1]:8000/v1") is None
    assert with_address("http://model:8000/v1", "10.0.0.7") == "http://10.0.0.7:8000/v1"
    assert with_address("http://model/v1", "fd00::7") == "http://[fd00::7]/v1"
    assert host_header("http://model:8000/v1") == "model:8000"
    assert host_header("http://model/v1") == "model"


class HangingDns(Dns):
    """A DNS server that does not answer (until ``answer`` is set): the system resolver then
    holds its thread for seconds."""

    def __init__(self, *addresses: str) -> None:
        super().__init__(*addresses)
        self.answer = asyncio.Event()

    async def resolve(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        await self.answer.wait()
        return list(self.addresses)


async def test_a_dns_server_that_hangs_delays_neither_readiness_nor_a_pile_of_lookups(
    make_settings: SettingsFactory, replicas: tuple[int, dict[str, Replica]]
) -> None:
    port, _ = replicas
    dns = HangingDns("127.0.0.2")
    settings = make_settings(
        upstream_urls=f"http://{NAME}:{port}/v1",
        upstream_health_interval=3600,
        upstream_connect_timeout=0.5,
    )
    pool = UpstreamPool(settings, resolver=dns.resolve)
    try:
        await pool.discovery.resolve()  # nothing known yet: the name stays as it is
        dns.addresses = ["127.0.0.1"]
        dns.answer.set()
        await pool.refresh()
        assert addresses(pool) == [("127.0.0.1", True)]
        dns.answer.clear()
        asked = len(dns.asked)
        for _ in range(3):  # rounds while the DNS server hangs: one lookup waits, not three
            await pool.refresh()
        assert len(dns.asked) == asked + 1
        assert addresses(pool) == [("127.0.0.1", True)]
        # readiness probes the servers it has; it does not wait for the DNS server
        readiness = await asyncio.wait_for(pool.readiness(), timeout=0.4)
        assert readiness.ready
        dns.addresses = ["127.0.0.2"]
        dns.answer.set()  # the late answer is taken at the next round
        await pool.refresh()
        assert len(dns.asked) == asked + 1
        assert addresses(pool) == [("127.0.0.2", True)]
    finally:
        await pool.aclose()

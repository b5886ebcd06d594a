"""Limits shared by every worker and replica, the per-user cap above the keys, key revocation
reaching every worker, and what happens when Redis is down (on a real Redis:
tests/integration/test_redis_shared_state.py)."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from switchboard.accounts.tables import User
from switchboard.db.bulk import close_kept_thread, lookup_thread
from switchboard.db.redis import redis_client
from switchboard.gateway.buckets import MemoryBuckets, RedisBuckets
from switchboard.gateway.errors import GatewayError
from switchboard.gateway.limits import LimitScope, RateLimiter
from switchboard.keys.services import KeyService, hash_key
from switchboard.keys.tables import ApiKey
from tests.conftest import mint_key
from tests.support.live import free_port

CHAT = "/v1/chat/completions"
BODY = {"model": "bench-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
REPO = Path(__file__).resolve().parents[2]


def shared_state_errors() -> float:
    labels = {"feature": "limits"}
    return REGISTRY.get_sample_value("switchboard_shared_state_errors_total", labels) or 0.0


def skewed_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The clock the key cache reads, moved on by the test (``now[0] += seconds``); the event
    loop's own clock is left to run."""
    now = [0.0]
    real = time.monotonic
    monkeypatch.setattr("switchboard.keys.services.time.monotonic", lambda: real() + now[0])
    return now


@pytest.fixture
async def key_services(
    client: AsyncTestClient[Any],
) -> AsyncIterator[Callable[[float], KeyService]]:
    """Key services as the app makes them (its engine, a lookup thread of their own), each
    another worker's; their threads are closed after the test."""
    threads: list[ThreadPoolExecutor] = []

    def make(cache_ttl: float) -> KeyService:
        threads.append(lookup_thread("key-lookups"))
        return KeyService(cache_ttl, lookups=(client.app.state.resources.db, threads[-1]))

    yield make
    for thread in threads:
        await close_kept_thread(thread)


async def burst(limiter: RateLimiter, attempts: int, rpm: int) -> list[int]:
    async def attempt() -> int:
        try:
            await limiter.reserve([LimitScope("key", 1, rpm, 1_000_000)], 10)
        except GatewayError as error:
            return error.status
        return 200

    return sorted(await asyncio.gather(*(attempt() for _ in range(attempts))))


async def test_memory_buckets_let_exactly_n_of_5n_through() -> None:
    assert await burst(RateLimiter(MemoryBuckets()), 35, rpm=7) == [200] * 7 + [429] * 28


async def test_keys_add_no_quota_above_their_owner(client: AsyncTestClient[Any]) -> None:
    one = await mint_key(client, "greedy", rpm=50)
    two = await mint_key(client, "greedy", rpm=50)
    await User.update({User.default_rpm: 3}).where(User.username == "greedy")  # before use
    statuses = []
    for secret in itertools.islice(itertools.cycle([one, two]), 6):
        body = {**BODY, "model": "fake-model"}
        response = await client.post(CHAT, json=body, headers={"Authorization": f"Bearer {secret}"})
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert "your account" in response.json()["error"]["message"]
    assert statuses == [200, 200, 200, 429, 429, 429]


async def test_a_failing_redis_lets_requests_through_and_is_counted() -> None:
    port = free_port()  # nothing listens there
    redis = redis_client(f"redis://127.0.0.1:{port}/0", 0.5)
    before = shared_state_errors()
    try:
        limiter = RateLimiter(RedisBuckets(redis))
        reservation = await limiter.reserve([LimitScope("key", 1, 1, 1)], 1)
        reservation.settle(0)  # gives the one token back: a call to Redis
        await limiter.aclose()
    finally:
        await redis.aclose()
    assert shared_state_errors() == before + 2  # the reservation and its settlement


async def test_a_revoked_key_is_forgotten_by_other_workers_after_the_cache_time(
    client: AsyncTestClient[Any],
    monkeypatch: pytest.MonkeyPatch,
    key_services: Callable[[float], KeyService],
) -> None:
    secret = await mint_key(client, "dave")
    now = [1000.0]
    monkeypatch.setattr("switchboard.keys.services.time.monotonic", lambda: now[0])
    other_worker = key_services(1.0)
    assert await other_worker.authenticate(secret) is not None
    await ApiKey.update({ApiKey.revoked_at: ApiKey.created_at}).where(
        ApiKey.key_hash == hash_key(secret)
    )  # revoked elsewhere: this worker's cache does not know yet
    now[0] += 0.5
    assert await other_worker.authenticate(secret) is not None
    now[0] += 0.6
    assert await other_worker.authenticate(secret) is None


async def test_requests_in_flight_share_one_key_lookup(
    client: AsyncTestClient[Any],
    monkeypatch: pytest.MonkeyPatch,
    key_services: Callable[[float], KeyService],
) -> None:
    secret = await mint_key(client, "erin")
    service = key_services(1.0)
    loads = 0
    real = service._load

    async def counted(digest: str) -> Any:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.05)  # a lookup that takes a while, as under load
        return await real(digest)

    monkeypatch.setattr(service, "_load", counted)
    owners = await asyncio.gather(*(service.authenticate(secret) for _ in range(20)))
    assert loads == 1
    assert {owner.username for owner in owners if owner is not None} == {"erin"}
    assert all(owner is not None for owner in owners)


async def test_a_key_in_use_is_looked_up_again_without_a_request_waiting(
    client: AsyncTestClient[Any],
    monkeypatch: pytest.MonkeyPatch,
    key_services: Callable[[float], KeyService],
) -> None:
    """In the last tenth of its cache time, a key in use is refreshed in the background: the
    request that notices goes on with the entry it has (a steady caller used to wait for a
    lookup every ``cache_ttl``), and the refreshed entry lasts from when its lookup began."""
    secret = await mint_key(client, "frank")
    now = skewed_clock(monkeypatch)
    service = key_services(10.0)
    assert await service.authenticate(secret) is not None  # the first lookup is awaited
    release, loads = asyncio.Event(), []
    real = service._load

    async def held(digest: str) -> Any:
        loads.append(now[0])
        await release.wait()
        return await real(digest)

    monkeypatch.setattr(service, "_load", held)
    now[0] += 8  # 2 s left: nothing to do yet
    assert await service.authenticate(secret) is not None
    assert loads == []
    now[0] += 1.5  # 0.5 s left: the lookup starts, the request does not wait for it
    owner = await asyncio.wait_for(service.authenticate(secret), timeout=30)
    assert owner is not None
    assert owner.username == "frank"
    assert loads == [9.5]
    assert await service.authenticate(secret) is not None  # one refresh at a time
    assert loads == [9.5]
    release.set()
    for _ in range(100):  # let the background lookup finish
        if not service._loading:
            break
        await asyncio.sleep(0.01)
    now[0] += 7.5  # 17 s after the first lookup, 7.5 s after the refresh began
    assert await service.authenticate(secret) is not None
    assert loads == [9.5]


async def test_a_failed_background_lookup_keeps_the_entry_until_it_expires(
    client: AsyncTestClient[Any],
    monkeypatch: pytest.MonkeyPatch,
    key_services: Callable[[float], KeyService],
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = await mint_key(client, "grace")
    now = skewed_clock(monkeypatch)
    service = key_services(10.0)
    assert await service.authenticate(secret) is not None

    async def down(digest: str) -> Any:
        raise ConnectionRefusedError("database down")

    monkeypatch.setattr(service, "_load", down)
    now[0] += 9.5  # in the last tenth: a background lookup, which fails
    assert await service.authenticate(secret) is not None
    for _ in range(100):
        if not service._loading:
            break
        await asyncio.sleep(0.01)
    assert "background API key lookup failed" in caplog.text
    assert await service.authenticate(secret) is not None  # still within its time
    now[0] += 1
    with pytest.raises(ConnectionRefusedError):  # expired: the request waits, and sees why
        await service.authenticate(secret)


async def test_a_key_revoked_during_a_lookup_is_not_cached_as_valid(
    client: AsyncTestClient[Any],
    monkeypatch: pytest.MonkeyPatch,
    key_services: Callable[[float], KeyService],
) -> None:
    """The revocation drops the entry at once; a lookup that read the key before it must not
    put it back when it ends."""
    secret = await mint_key(client, "heidi")
    service = key_services(60.0)
    read, release = asyncio.Event(), asyncio.Event()
    real = service._load
    reads = 0

    async def read_then_wait(digest: str) -> Any:
        nonlocal reads
        reads += 1
        owner = await real(digest)
        read.set()
        if reads == 1:
            await release.wait()
        return owner

    monkeypatch.setattr(service, "_load", read_then_wait)
    lookup = asyncio.ensure_future(service.authenticate(secret))
    await asyncio.wait_for(read.wait(), timeout=30)
    owner = await real(hash_key(secret))
    assert owner is not None
    assert await service.revoke(owner.key_id)
    release.set()
    assert await asyncio.wait_for(lookup, timeout=30) is None  # read again after the revocation
    assert await service.authenticate(secret) is None


async def test_key_lookups_keep_one_sqlite_connection(
    client: AsyncTestClient[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every lookup of the app's service runs on its lookup thread's one connection. Piccolo
    ran each on a new connection and thread: about 2 ms of the core a lookup, once a
    ``cache_ttl`` for every key in use. The owner read that way is the one Piccolo reads."""
    secret = await mint_key(client, "ivan")
    opened: list[str] = []
    connect = sqlite3.connect

    def counted(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        opened.append(threading.current_thread().name)
        connection: sqlite3.Connection = connect(*args, **kwargs)
        return connection

    monkeypatch.setattr(sqlite3, "connect", counted)
    now = skewed_clock(monkeypatch)
    lookups = lookup_thread("key-lookups")
    service = KeyService(cache_ttl=1.0, lookups=(client.app.state.resources.db, lookups))
    try:
        owners = []
        for _ in range(5):
            owners.append(await service.authenticate(secret))
            now[0] += 2  # the entry expired: the next request waits for a lookup
    finally:
        await close_kept_thread(lookups)
    assert len(opened) == 1, opened
    assert opened[0].startswith("key-lookups")
    assert owners[0] is not None
    piccolo = ApiKey.select(ApiKey.id, ApiKey.user.id.as_alias("user_id"), ApiKey.user.username)
    stored = await piccolo.where(ApiKey.key_hash == hash_key(secret)).first()
    assert stored is not None
    assert (owners[0].key_id, owners[0].user_id) == (stored["id"], stored["user_id"])
    assert owners[0].username == stored["user.username"] == "ivan"
    assert all(owner == owners[0] for owner in owners)


async def test_a_service_made_without_lookups_refuses_to_verify_keys(
    client: AsyncTestClient[Any],
) -> None:
    """The CLI's service mints, lists and revokes; verifying is the app's (one query path)."""
    secret = await mint_key(client, "judy")
    with pytest.raises(RuntimeError, match="without lookups"):
        await KeyService().authenticate(secret)

"""Limits shared by every worker and replica (Redis), the per-user cap above the keys, key
revocation reaching every worker, and what happens when Redis is down."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from switchboard.accounts.tables import User
from switchboard.db.redis import redis_client
from switchboard.gateway.buckets import MemoryBuckets, RedisBuckets
from switchboard.gateway.errors import GatewayError
from switchboard.gateway.limits import LimitScope, RateLimiter
from switchboard.keys.services import KeyService, hash_key
from switchboard.keys.tables import ApiKey
from tests.conftest import mint_key
from tests.support.gateway_process import DEADLINE, gateway_process
from tests.support.live import free_port

CHAT = "/v1/chat/completions"
BODY = {"model": "bench-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
REPO = Path(__file__).resolve().parents[2]


def shared_state_errors() -> float:
    labels = {"feature": "limits"}
    return REGISTRY.get_sample_value("switchboard_shared_state_errors_total", labels) or 0.0


async def burst(limiter: RateLimiter, attempts: int, rpm: int) -> list[int]:
    async def attempt() -> int:
        try:
            await limiter.reserve([LimitScope("key", 1, rpm, 1_000_000)], 10)
        except GatewayError as error:
            return error.status
        return 200

    return sorted(await asyncio.gather(*(attempt() for _ in range(attempts))))


async def test_redis_buckets_let_exactly_n_of_5n_through(redis_url: str) -> None:
    redis = redis_client(redis_url, 5.0)
    try:
        assert await burst(RateLimiter(RedisBuckets(redis)), 35, rpm=7) == [200] * 7 + [429] * 28
    finally:
        await redis.aclose()


async def test_memory_buckets_let_exactly_n_of_5n_through() -> None:
    assert await burst(RateLimiter(MemoryBuckets()), 35, rpm=7) == [200] * 7 + [429] * 28


async def test_a_settled_reservation_gives_tokens_back_in_redis(redis_url: str) -> None:
    redis = redis_client(redis_url, 5.0)
    try:
        limiter = RateLimiter(RedisBuckets(redis))
        scope = [LimitScope("key", 9, 100, 100)]
        first = await limiter.reserve(scope, 80)
        with pytest.raises(GatewayError) as refused:
            await limiter.reserve(scope, 80)
        assert refused.value.type == "tokens"
        first.settle(5)
        await limiter.aclose()  # lets the settlement reach Redis
        second = await limiter.reserve(scope, 80)
        assert second.tokens == 80
    finally:
        await redis.aclose()


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
    client: AsyncTestClient[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = await mint_key(client, "dave")
    now = [1000.0]
    monkeypatch.setattr("switchboard.keys.services.time.monotonic", lambda: now[0])
    other_worker = KeyService(cache_ttl=1.0)
    assert await other_worker.authenticate(secret) is not None
    await ApiKey.update({ApiKey.revoked_at: ApiKey.created_at}).where(
        ApiKey.key_hash == hash_key(secret)
    )  # revoked elsewhere: this worker's cache does not know yet
    now[0] += 0.5
    assert await other_worker.authenticate(secret) is not None
    now[0] += 0.6
    assert await other_worker.authenticate(secret) is None


@pytest.fixture
def fake_upstream_url() -> Any:
    import subprocess
    import sys

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(REPO / "loadtests" / "fake_upstream.py"), str(port)]
    )
    url = f"http://127.0.0.1:{port}"
    give_up = time.monotonic() + DEADLINE
    while True:
        try:
            if httpx.get(f"{url}/v1/models", timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            assert process.poll() is None
            assert time.monotonic() < give_up
            time.sleep(0.1)
    yield f"{url}/v1"
    process.terminate()
    process.wait(timeout=60)


def test_two_gateways_with_two_workers_each_share_one_limit(
    tmp_path: Path, redis_url: str, fake_upstream_url: str
) -> None:
    """Exactly N of 5N concurrent requests pass across 4 worker processes. The bucket leaks N
    per minute, so a burst that took ``t`` seconds may let ``t * N / 60`` more through."""
    limit = 4
    database = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    settings: dict[str, Any] = {
        "workers": 2, "redis_url": redis_url, "database_url": database,
        "upstream_urls": fake_upstream_url, "default_model": "bench-model",
    }  # fmt: skip
    with (
        gateway_process(tmp_path / "a", **settings) as (_, first),
        gateway_process(tmp_path / "b", **settings) as (_, second),
    ):
        secret = mint_by_cli(tmp_path / "a", database, limit)

        async def send_all() -> tuple[list[int], float]:
            auth = {"Authorization": f"Bearer {secret}", "Connection": "close"}
            async with httpx.AsyncClient(timeout=DEADLINE) as http:
                started = time.monotonic()
                sent = [
                    http.post(f"{(first, second)[n % 2]}{CHAT}", json=BODY, headers=auth)
                    for n in range(5 * limit)
                ]
                responses = await asyncio.gather(*sent)
                return [r.status_code for r in responses], time.monotonic() - started

        statuses, took = asyncio.run(send_all())
    passed = statuses.count(200)
    assert statuses.count(429) == len(statuses) - passed
    assert limit <= passed <= limit + int(took * limit / 60), (statuses, took)


def mint_by_cli(data_dir: Path, database: str, rpm: int) -> str:
    import os
    import subprocess
    import sys

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD")},
        "SWITCHBOARD_DATA_DIR": str(data_dir), "SWITCHBOARD_DATABASE_URL": database,
        "SWITCHBOARD_ENVIRONMENT": "test",
    }  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "switchboard.cli", "keys", "create", "--user", "shared",
         "--rpm", str(rpm), "--tpm", "1000000"],
        env=env, capture_output=True, text=True, check=True, timeout=DEADLINE,
    )  # fmt: skip
    return done.stdout.strip().splitlines()[-1]


def test_sessions_and_the_throttle_are_shared_through_redis(
    make_settings: Any, fake_upstream: Any, redis_url: str
) -> None:
    """Two app instances (two replicas) on one Redis: a sign-in on one is a session on the
    other, and failures counted on one slow the other down. Nothing lands in the database."""
    from switchboard.accounts.services import create_user
    from switchboard.accounts.tables import Session
    from switchboard.accounts.throttle import ACCOUNT
    from switchboard.app import create_app
    from tests.support.live import LiveServer
    from tests.support.web_session import WebSession

    settings = make_settings(redis_url=redis_url)
    first = LiveServer(create_app(settings, upstream_transport=fake_upstream.transport())).start()
    second = LiveServer(create_app(settings, upstream_transport=fake_upstream.transport())).start()
    try:
        first.run(create_user("ann", password="a long enough password"))  # pragma: allowlist secret
        with WebSession(first.url) as on_first, WebSession(second.url) as on_second:
            assert on_first.sign_in("ann", "a long enough password").status_code == 303
            on_second.http.cookies = on_first.http.cookies
            assert on_second.get("/chat").status_code == 200

            async def stored() -> int:
                return int(await Session.count())

            assert first.run(stored()) == 0  # in Redis, not in the database
            for _ in range(ACCOUNT.free):
                assert on_first.sign_in("ann", "wrong").status_code == 400
            assert on_second.sign_in("ann", "a long enough password").status_code == 429
    finally:
        second.stop()
        first.stop()


async def test_requests_in_flight_share_one_key_lookup(
    client: AsyncTestClient[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = await mint_key(client, "erin")
    service = KeyService(cache_ttl=1.0)
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

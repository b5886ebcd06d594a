"""State every worker and replica shares through a real Redis (the run's redis-server, emptied
for each test): rate limits, budgets, sessions and the sign-in throttle, and readiness that
follows Redis. Moved here from tests/unit, which needs no server."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from switchboard.budgets.counters import RedisSpend, Spend
from switchboard.budgets.service import BudgetService, OverBudget
from switchboard.db.redis import redis_client
from switchboard.gateway.buckets import RedisBuckets
from switchboard.gateway.errors import GatewayError
from switchboard.gateway.limits import LimitScope, RateLimiter
from switchboard.usage.tables import UsageRecord
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import DEADLINE, gateway_process
from tests.support.live import free_port
from tests.support.waiting import responds, wait_for
from tests.unit.test_budgets import catalog_limit, row
from tests.unit.test_shared_limits import BODY, CHAT, REPO, burst

# --- rate limits -----------------------------------------------------------------------------


async def test_redis_buckets_let_exactly_n_of_5n_through(redis_url: str) -> None:
    redis = redis_client(redis_url, 5.0)
    try:
        assert await burst(RateLimiter(RedisBuckets(redis)), 35, rpm=7) == [200] * 7 + [429] * 28
    finally:
        await redis.aclose()


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


@pytest.fixture
def fake_upstream_url() -> Iterator[str]:
    """loadtests/fake_upstream.py in a process of its own (the gateways are processes too)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(REPO / "loadtests" / "fake_upstream.py"), str(port)]
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: responds(f"{url}/v1/models"), "the fake upstream", DEADLINE, process=process
        )
        yield f"{url}/v1"
    finally:
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
        "workers": 2,
        "redis_url": redis_url,
        "database_url": database,
        "upstream_urls": fake_upstream_url,
        "default_model": "bench-model",
    }
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
    import subprocess
    import sys

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD")},
        "SWITCHBOARD_DATA_DIR": str(data_dir),
        "SWITCHBOARD_DATABASE_URL": database,
        "SWITCHBOARD_ENVIRONMENT": "test",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "switchboard.cli",
            "keys",
            "create",
            "--user",
            "shared",
            "--rpm",
            str(rpm),
            "--tpm",
            "1000000",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=DEADLINE,
    )
    return done.stdout.strip().splitlines()[-1]


# --- sessions, the throttle, readiness ---------------------------------------------------------


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


# --- budgets -------------------------------------------------------------------------------------


async def test_workers_share_one_budget_through_redis(redis_url: str) -> None:
    redis = redis_client(redis_url, 2.0)
    try:
        workers = [BudgetService(RedisSpend(redis), 15, "USD") for _ in range(2)]
        for worker in workers:
            worker.limits = {"key:5": catalog_limit(tokens=100)}
        holds = []
        for index in range(5):  # 30 tokens each, alternating workers: exactly 3 fit
            try:
                holds.append(await workers[index % 2].reserve(None, 5, "m", 10, 20))
            except OverBudget:
                holds.append(None)
        assert [hold is not None for hold in holds] == [True, True, True, False, False]
        first = holds[0]
        assert first is not None
        first.settle("m", 5, 5)  # used 10 of its 30
        await workers[0].store.aclose()
        assert (await workers[1].spent(["key:5"]))["key:5"].tokens == 70
        assert await workers[1].reserve(None, 5, "m", 10, 20) is not None  # 70 + 30 fits
        assert await RedisSpend(redis).seed("2027-01", {"key:5": Spend(1, 1)})
        assert not await RedisSpend(redis).seed("2027-01", {"key:5": Spend(1, 1)})
    finally:
        await redis.aclose()


async def test_counters_come_back_when_redis_restarts_empty(
    client: AsyncTestClient[Any], redis_url: str
) -> None:
    """Redis keeps nothing on disk: after a restart the counters, and the mark that the month
    was seeded, are gone. The periodic refresh seeds them again from the usage table, without
    counting twice what was spent meanwhile."""
    now = dt.datetime(2027, 3, 15, 12, tzinfo=dt.UTC)
    await UsageRecord.insert(row(now - dt.timedelta(days=1)), row(now - dt.timedelta(hours=1)))
    redis = redis_client(redis_url, 2.0)
    try:
        service = BudgetService(RedisSpend(redis), 15, "USD", clock=lambda: now)
        service.limits = {"user:1": catalog_limit(tokens=1000)}
        await service.seed()
        assert (await service.spent(["user:1"]))["user:1"].tokens == 300
        await redis.flushall()  # the restart
        hold = await service.reserve(1, None, "m", 10, 10)  # spent meanwhile: 20 tokens
        assert hold is not None
        hold.settle("m", 10, 10)
        await UsageRecord.insert(row(now, prompt_tokens=10, completion_tokens=10, total_tokens=20))
        await service.seed()  # what the refresh does every SWITCHBOARD_BUDGET_REFRESH_SECONDS
        assert (await service.spent(["user:1"]))["user:1"].tokens == 320
        with pytest.raises(OverBudget):
            await service.reserve(1, None, "m", 600, 81)  # 320 + 681 > 1000
        await service.seed()  # seeded: nothing added again
        assert (await service.spent(["user:1"]))["user:1"].tokens == 320
    finally:
        await redis.aclose()

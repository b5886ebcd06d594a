"""The chat's per-person quotas held in a real Redis (the run's redis-server, emptied for each
test), so that they hold across workers: follower places, their leases, hourly imports. Moved
here from tests/unit/test_workspace_quotas.py, which keeps the in-process store's tests."""

from __future__ import annotations

import asyncio

from switchboard.chat.quotas import ChatQuotas, RedisQuotas
from switchboard.db.redis import redis_client
from tests.support.waiting import wait_for_async
from tests.unit.test_workspace_quotas import hold_and_cancel


async def test_a_follower_whose_page_goes_away_gives_its_place_back(redis_url: str) -> None:
    redis = redis_client(redis_url, 5.0)
    try:
        quotas = ChatQuotas(RedisQuotas(redis), followers=1, imports_per_hour=1, lease=600)
        for _ in range(3):  # with a place lost each time, the second would be refused
            await hold_and_cancel(quotas)
        async with quotas.following(7) as admitted:
            assert admitted
    finally:
        await redis.aclose()


async def test_followers_are_capped_across_workers(redis_url: str) -> None:
    one, two = redis_client(redis_url, 5.0), redis_client(redis_url, 5.0)
    try:
        first = ChatQuotas(RedisQuotas(one), followers=2, imports_per_hour=1, lease=600)
        second = ChatQuotas(RedisQuotas(two), followers=2, imports_per_hour=1, lease=600)
        async with first.following(5) as a, second.following(5) as b, first.following(5) as c:
            assert (a, b, c) == (True, True, False)
            async with second.following(6) as other:
                assert other  # another person
        async with second.following(5) as again:
            assert again
    finally:
        await one.aclose()
        await two.aclose()


async def test_a_lease_ends_by_itself(redis_url: str) -> None:
    """A worker that died holding places gives them back when their lease ends."""
    redis = redis_client(redis_url, 5.0)
    try:
        store = RedisQuotas(redis)
        assert await store.enter("followers:9", 1, 0.2, "dead-worker")
        assert not await store.enter("followers:9", 1, 0.2, "next")

        async def entered() -> bool:
            return await store.enter("followers:9", 1, 60, "next")

        await wait_for_async(entered, "the dead worker's place is free again")
    finally:
        await redis.aclose()


async def test_imports_are_counted_across_workers(redis_url: str) -> None:
    clients = [redis_client(redis_url, 5.0) for _ in range(3)]
    try:
        workers = [ChatQuotas(RedisQuotas(c), 1, imports_per_hour=3, lease=1) for c in clients]
        waits = await asyncio.gather(*(workers[n % 3].import_wait(4) for n in range(12)))
        assert sorted(waits)[:3] == [0, 0, 0]
        assert all(0 < wait <= 3600 for wait in sorted(waits)[3:])
    finally:
        for client in clients:
            await client.aclose()

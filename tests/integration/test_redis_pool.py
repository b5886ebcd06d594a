"""The shared store under a burst: more requests at once than the pool has connections wait
for one; none fails open (a budget or a rate limit let through because the pool was full)."""

from __future__ import annotations

import asyncio

from switchboard.db.redis import redis_client

BURST = 400


def test_a_burst_larger_than_the_pool_waits_for_connections(redis_url: str) -> None:
    async def burst() -> list[int]:
        client = redis_client(redis_url, timeout=5.0)
        try:
            # each call holds its connection for a moment, as a script under load does
            async def hold() -> int:
                # redis-py's execute_command has no annotations
                await client.execute_command("BLPOP", "nothing", "0.01")  # type: ignore[no-untyped-call]
                return int(await client.incr("burst"))

            return await asyncio.gather(*(hold() for _ in range(BURST)))
        finally:
            await client.aclose()

    counts = asyncio.run(burst())
    assert sorted(counts) == list(range(1, BURST + 1))

"""What the gateway sustains beyond raw throughput (``make bench-gateway``), per server:

- ``capacity``: req/s at 1 to 64 connections; the highest rate whose p99 stays under 50 ms
  (wrk is closed-loop: each level is a rate the server kept, and its tail latency there);
- ``long_streams``: 100 streams of 100 tokens at 20 a second, all at once; how many arrive
  with no gap over 100 ms between chunks (a stall a reader sees), and the worst gap;
- ``memory``: RSS idle, after the 50,000-request soak, after a burst of 128 connections and
  ten seconds of rest (growth against the soak's end: a leak keeps growing).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from loadtests.common import process_tree_rss

LEVELS = (1, 2, 4, 8, 16, 32, 64)
P99_BOUND_MS = 50.0
STREAMS, STALL_MS = 100, 100.0
LONG_MODEL = "bench-long"
Wrk = Callable[..., dict[str, float]]


def capacity(wrk: Wrk, url: str, body: dict[str, Any], key: str | None) -> dict[str, Any]:
    levels = []
    for connections in LEVELS:
        run = wrk(url, body, key, connections, "4s")
        levels.append(
            {
                "connections": connections,
                "requests_per_s": run["requests_per_s"],
                "p99_ms": run["p99_ms"],
                "errors": run["errors"],
            }
        )
    within = [level["requests_per_s"] for level in levels if level["p99_ms"] < P99_BOUND_MS]
    return {"levels": levels, "max_rps_p99_under_50ms": max(within, default=0.0)}


async def _one_stream(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> float:
    """The longest gap between two chunks of one stream, in ms (its first chunk excluded)."""
    gaps: list[float] = []
    last: float | None = None
    async with session.post(url, json=body) as response:
        response.raise_for_status()
        async for _ in response.content.iter_any():
            now = time.monotonic()
            if last is not None:
                gaps.append(now - last)
            last = now
    return 1000 * max(gaps, default=0.0)


def long_streams(url: str, key: str | None) -> dict[str, Any]:
    body = {
        "model": LONG_MODEL,
        "stream": True,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "a long answer, please"}],
    }
    headers = {"Authorization": f"Bearer {key}"} if key else {}

    async def run() -> list[float]:
        connector = aiohttp.TCPConnector(limit=STREAMS + 10)
        async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
            results = await asyncio.gather(
                *(_one_stream(session, url, body) for _ in range(STREAMS)), return_exceptions=True
            )
        return [r if isinstance(r, float) else float("inf") for r in results]

    worst = asyncio.run(run())
    finished = [gap for gap in worst if gap != float("inf")]
    return {
        "streams": STREAMS,
        "failed": STREAMS - len(finished),
        "without_stall": sum(gap <= STALL_MS for gap in finished),
        "median_worst_gap_ms": round(statistics.median(finished), 1) if finished else None,
        "worst_gap_ms": round(max(finished), 1) if finished else None,
    }


def burst_and_rest(wrk: Wrk, url: str, body: dict[str, Any], key: str, pid: int) -> dict[str, Any]:
    """RSS after a burst of 128 connections and ten seconds of rest, in MB."""
    wrk(url, body, key, 128, "8s")
    time.sleep(10)
    return {"rss_after_burst_and_rest_mb": process_tree_rss(pid) / 2**20}

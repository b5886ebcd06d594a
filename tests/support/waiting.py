"""Waiting for a condition, the one way the tests wait: generous deadlines, never timing.

``wait_for`` polls a condition (``wait_for_async`` an awaitable one) and fails saying what did
not happen; ``responds`` is the usual condition, an HTTP answer with a given status. Every loop
that polls in tests/ uses these (``wait_for(..., timeout=...)`` where a suite needs longer)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx

DEADLINE = 60.0
"""Seconds for something that happens at once when the code is right (a busy machine is slow)."""


def wait_for(
    condition: Callable[[], object], what: str, timeout: float = DEADLINE, every: float = 0.1
) -> None:
    """Return once ``condition()`` is true; fail, saying ``what`` did not happen, after
    ``timeout`` seconds."""
    give_up = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < give_up, f"{what}: not within {timeout:.0f} s"
        time.sleep(every)


async def wait_for_async(
    condition: Callable[[], Awaitable[object]],
    what: str,
    within: float = DEADLINE,
    every: float = 0.1,
) -> None:
    """``wait_for`` in an event loop: ``condition`` is awaited, and the loop keeps running."""
    give_up = time.monotonic() + within
    while not await condition():
        assert time.monotonic() < give_up, f"{what}: not within {within:.0f} s"
        await asyncio.sleep(every)


def responds(url: str, status: int = 200, **options: object) -> bool:
    """Whether ``url`` answers GET with ``status`` now (refused or timed out: no);
    ``options`` go to ``httpx.get`` (``verify``, ``headers``...)."""
    try:
        return httpx.get(url, timeout=5, **options).status_code == status  # type: ignore[arg-type]
    except httpx.TransportError:
        return False

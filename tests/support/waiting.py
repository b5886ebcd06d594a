"""Waiting for a condition, the one way the tests wait: generous deadlines, never timing.

``wait_for`` polls a condition (``wait_for_async`` an awaitable one) and fails saying what did
not happen, at once when the process it waits on has exited; ``responds`` is the usual
condition, an HTTP answer with a given status. Every loop in tests/ that polls uses these."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

DEADLINE = 60.0
"""Seconds for something that happens at once when the code is right (a busy machine is slow)."""

What = str | Callable[[], str]
"""What is awaited, for the failure; a callable is asked only then (to show the last state)."""


def _give_up(what: What, timeout: float, process: subprocess.Popen[Any] | None) -> None:
    said = what() if callable(what) else what
    if process is not None and process.poll() is not None:
        raise AssertionError(f"{said}: {process.args!r} exited with {process.returncode}")
    raise AssertionError(f"{said}: not within {timeout:.0f} s")


def wait_for(
    condition: Callable[[], object],
    what: What,
    timeout: float = DEADLINE,
    every: float = 0.1,
    *,
    process: subprocess.Popen[Any] | None = None,
) -> None:
    """Return once ``condition()`` is true; fail, saying ``what`` did not happen, after
    ``timeout`` seconds, or as soon as ``process`` (the one that should make it happen) exits."""
    give_up = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > give_up or (process is not None and process.poll() is not None):
            _give_up(what, timeout, process)
        time.sleep(every)


async def wait_for_async(
    condition: Callable[[], Awaitable[object]],
    what: What,
    within: float = DEADLINE,
    every: float = 0.1,
) -> None:
    """``wait_for`` in an event loop: ``condition`` is awaited, and the loop keeps running."""
    give_up = time.monotonic() + within
    while not await condition():
        if time.monotonic() > give_up:
            _give_up(what, within, None)
        await asyncio.sleep(every)


def responds(url: str, status: int = 200, **options: Any) -> bool:
    """Whether ``url`` answers GET with ``status`` now (refused or timed out: no);
    ``options`` go to ``httpx.get`` (``verify``, ``headers``...)."""
    try:
        return httpx.get(url, **{"timeout": 5, **options}).status_code == status
    except httpx.TransportError:
        return False

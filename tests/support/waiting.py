"""Waiting for a condition, the one way the tests wait: generous deadlines, never timing."""

from __future__ import annotations

import time
from collections.abc import Callable

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

"""Throttle failed sign-ins per (username, client address): after ``limit`` failures within
``window`` seconds, further attempts wait until the oldest failure ages out."""

from __future__ import annotations

import time
from collections import defaultdict, deque


class SignInThrottle:
    def __init__(self, limit: int = 5, window: float = 900.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: defaultdict[tuple[str, str], deque[float]] = defaultdict(deque)

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        failures = self._failures[key]
        cutoff = time.monotonic() - self.window
        while failures and failures[0] < cutoff:
            failures.popleft()
        return failures

    def retry_after(self, username: str, address: str) -> float:
        """Seconds to wait before another attempt (0: go ahead)."""
        failures = self._recent((username.lower(), address))
        if len(failures) < self.limit:
            return 0.0
        return failures[0] + self.window - time.monotonic()

    def failed(self, username: str, address: str) -> None:
        self._recent((username.lower(), address)).append(time.monotonic())
        if len(self._failures) > 100_000:
            self._failures.clear()

    def succeeded(self, username: str, address: str) -> None:
        self._failures.pop((username.lower(), address), None)

"""Failed sign-ins slow down further tries, per account and per client address.

Growing delays, not a lock-out: after ``free`` failures within ``window`` seconds, the next try
must wait ``base * 2**(failures - free)`` seconds after the last failure, up to ``ceiling``. An
attacker can keep an account slow but never locked, and the owner waits at most ``ceiling``.
Per address catches spraying many names from one place; per account catches one name tried from
many. Counts live in this process (one worker) or in Redis (several workers or replicas).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from switchboard.db.redis import shared_state_errors
from switchboard.observability.metrics import SHARED_STATE_ERRORS

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)
STORE_FAILURES = shared_state_errors()
"""Redis failing (unreachable, slow, full): the feature goes on without it."""


@dataclass(frozen=True)
class Policy:
    free: int
    base: float
    ceiling: float

    def delay(self, failures: int) -> float:
        if failures < self.free:
            return 0.0
        return float(min(self.ceiling, self.base * 2 ** (failures - self.free)))


ACCOUNT = Policy(free=5, base=1.0, ceiling=60.0)
ADDRESS = Policy(free=20, base=1.0, ceiling=300.0)


class FailureStore(Protocol):
    async def read(self, keys: Sequence[str]) -> list[tuple[int, float]]:
        """(failures, time of the last one) per key; (0, 0.0) for none."""

    async def add(self, keys: Sequence[str], now: float, window: float) -> None: ...

    async def clear(self, key: str) -> None: ...


class MemoryFailures:
    """Failures in this process: a bounded LRU (the oldest entries go, never all at once)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._entries: OrderedDict[str, tuple[int, float, float]] = OrderedDict()

    async def read(self, keys: Sequence[str]) -> list[tuple[int, float]]:
        now = time.time()
        found = []
        for key in keys:
            count, last, until = self._entries.get(key, (0, 0.0, 0.0))
            found.append((count, last) if until > now else (0, 0.0))
        return found

    async def add(self, keys: Sequence[str], now: float, window: float) -> None:
        for key in keys:
            count, _, until = self._entries.get(key, (0, 0.0, 0.0))
            self._entries[key] = ((count if until > now else 0) + 1, now, now + window)
            self._entries.move_to_end(key)
        while len(self._entries) > self.max_keys:
            self._entries.popitem(last=False)

    async def clear(self, key: str) -> None:
        self._entries.pop(key, None)


class RedisFailures:
    """Failures in Redis (a hash per key: count and last, expiring a window after the last)."""

    def __init__(self, redis: Redis, prefix: str = "sb:signin:") -> None:
        self.redis = redis
        self.prefix = prefix

    async def read(self, keys: Sequence[str]) -> list[tuple[int, float]]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(self.prefix + key, "count", "last")
            rows = await pipe.execute()
        return [(int(row[0] or 0), float(row[1] or 0.0)) for row in rows]

    async def add(self, keys: Sequence[str], now: float, window: float) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in keys:
                pipe.hincrby(self.prefix + key, "count", 1)
                pipe.hset(self.prefix + key, "last", repr(now))
                pipe.expire(self.prefix + key, int(window) + 1)
            await pipe.execute()

    async def clear(self, key: str) -> None:
        await self.redis.delete(self.prefix + key)


class SignInThrottle:
    def __init__(self, store: FailureStore, window: float = 900.0) -> None:
        self.store = store
        self.window = window

    @staticmethod
    def _keys(username: str, address: str) -> tuple[str, str]:
        return f"account:{username}", f"address:{address}"

    async def retry_after(self, username: str, address: str) -> float:
        """Seconds to wait before the next try (0: go ahead). ``username`` normalised."""
        try:
            states = await self.store.read(self._keys(username, address))
        except STORE_FAILURES:
            self._failed()
            return 0.0
        now = time.time()
        waits = [
            last + policy.delay(count) - now
            for (count, last), policy in zip(states, (ACCOUNT, ADDRESS), strict=True)
        ]
        return max(0.0, *waits)

    async def failed(self, username: str, address: str) -> None:
        try:
            await self.store.add(self._keys(username, address), time.time(), self.window)
        except STORE_FAILURES:
            self._failed()

    async def succeeded(self, username: str, address: str) -> None:
        """The account's count starts over; the address keeps its count (a valid account of
        one's own must not wash away a spray of failures from the same place)."""
        try:
            await self.store.clear(self._keys(username, address)[0])
        except STORE_FAILURES:
            self._failed()

    @staticmethod
    def _failed() -> None:
        SHARED_STATE_ERRORS.labels("throttle").inc()
        log.warning("sign-in throttle store unavailable", exc_info=True)

"""Per-person quotas of the chat that every worker must agree on: follower streams held at once
(people re-attaching to an answer being written: each holds a connection until the answer
ends) and conversation imports per hour (each can write 50,000 messages in one
transaction). Kept in this process (one worker) or in Redis (several workers or replicas), as the
sign-in throttle is.

A follower holds a lease that ends by itself after ``lease`` seconds, so a worker that dies
holding some gives them back. If Redis fails the request goes through, counted in
``switchboard_shared_state_errors_total{feature="quotas"}``: the quota's store must not become an
outage of the chat.
"""

from __future__ import annotations

import contextlib
import logging
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol

import anyio

from switchboard.db.redis import shared_state_errors
from switchboard.observability.metrics import SHARED_STATE_ERRORS

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)
STORE_FAILURES = shared_state_errors()
"""Redis failing (unreachable, slow, full): the feature goes on without it."""
IMPORT_WINDOW_SECONDS = 3600.0


class QuotaStore(Protocol):
    async def enter(self, key: str, limit: int, lease: float, ticket: str) -> bool:
        """Hold one of ``limit`` places under ``key`` for ``lease`` seconds (False: all held)."""

    async def leave(self, key: str, ticket: str) -> None: ...

    async def count(self, key: str, limit: int, window: float) -> float:
        """Count one use in the current ``window``: 0 if it is within ``limit``, else the
        seconds until the window ends."""


class MemoryQuotas:
    """This process's: bounded LRUs (the oldest keys go, never all at once)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._held: OrderedDict[str, dict[str, float]] = OrderedDict()
        self._windows: OrderedDict[str, tuple[int, float]] = OrderedDict()

    async def enter(self, key: str, limit: int, lease: float, ticket: str) -> bool:
        now = time.monotonic()
        held = {t: until for t, until in self._held.get(key, {}).items() if until > now}
        if len(held) >= limit:
            return False
        held[ticket] = now + lease
        self._held[key] = held
        self._held.move_to_end(key)
        while len(self._held) > self.max_keys:
            self._held.popitem(last=False)
        return True

    async def leave(self, key: str, ticket: str) -> None:
        held = self._held.get(key, {})
        held.pop(ticket, None)
        if not held:
            self._held.pop(key, None)

    async def count(self, key: str, limit: int, window: float) -> float:
        now = time.monotonic()
        used, ends = self._windows.get(key, (0, 0.0))
        if ends <= now:
            used, ends = 0, now + window
        self._windows[key] = (used + 1, ends)
        self._windows.move_to_end(key)
        while len(self._windows) > self.max_keys:
            self._windows.popitem(last=False)
        return 0.0 if used < limit else ends - now


# KEYS: the holders (a sorted set: ticket -> end of its lease); ARGV: limit, lease, ticket.
ENTER = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) * 1000))
return 1
"""

# KEYS: the window's counter; ARGV: window (ms), limit. Returns 0, or the ms until it ends.
COUNT = """
local used = redis.call('INCR', KEYS[1])
if used == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if used <= tonumber(ARGV[2]) then return 0 end
return math.max(redis.call('PTTL', KEYS[1]), 1)
"""


class RedisQuotas:
    """Shared by every worker and replica; each step is one script (atomic in Redis)."""

    def __init__(self, redis: Redis, prefix: str = "sb:quota:") -> None:
        self.redis = redis
        self.prefix = prefix
        self._enter = redis.register_script(ENTER)
        self._count = redis.register_script(COUNT)

    async def enter(self, key: str, limit: int, lease: float, ticket: str) -> bool:
        return bool(await self._enter(keys=[self.prefix + key], args=[limit, lease, ticket]))

    async def leave(self, key: str, ticket: str) -> None:
        await self.redis.zrem(self.prefix + key, ticket)

    async def count(self, key: str, limit: int, window: float) -> float:
        waited = await self._count(keys=[self.prefix + key], args=[int(window * 1000), limit])
        return int(waited) / 1000


class ChatQuotas:
    """The chat's quotas, with their limits (settings ``max_follower_streams`` and
    ``imports_per_hour``)."""

    def __init__(self, store: QuotaStore, followers: int, imports_per_hour: int, lease: float):
        self.store = store
        self.followers = followers
        self.imports_per_hour = imports_per_hour
        self.lease = lease

    @contextlib.asynccontextmanager
    async def following(self, user_id: int) -> AsyncIterator[bool]:
        """Whether ``user_id`` may open one more follower stream (held until the block ends)."""
        key, ticket = f"followers:{user_id}", secrets.token_hex(8)
        try:
            admitted = await self.store.enter(key, self.followers, self.lease, ticket)
        except STORE_FAILURES:
            self._failed()
            admitted = True
        try:
            yield admitted
        finally:
            if admitted:
                await self._leave(key, ticket)

    async def _leave(self, key: str, ticket: str) -> None:
        """Shielded: a follower mostly ends because its page went away, and then the stream's
        task is being cancelled (anyio would cancel every await here again)."""
        with anyio.CancelScope(shield=True):
            try:
                await self.store.leave(key, ticket)
            except STORE_FAILURES:
                self._failed()  # the lease ends by itself

    async def import_wait(self, user_id: int) -> int:
        """0 if ``user_id`` may import now (counted), else the seconds to wait."""
        try:
            wait = await self.store.count(
                f"imports:{user_id}", self.imports_per_hour, IMPORT_WINDOW_SECONDS
            )
        except STORE_FAILURES:
            self._failed()
            return 0
        return math.ceil(wait)

    @staticmethod
    def _failed() -> None:
        SHARED_STATE_ERRORS.labels("quotas").inc()
        log.warning("chat quota store unavailable: request let through", exc_info=True)

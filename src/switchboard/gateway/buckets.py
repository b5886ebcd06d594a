"""Leaky buckets behind the rate limits: in this process, or in Redis for every worker and replica.

A bucket holds at most ``capacity`` units and leaks ``capacity`` per minute. ``take`` is all or
nothing over several buckets at once (a key's and its owner's), so with a limit of N and 5N
concurrent requests exactly N pass: in one process because nothing awaits between the check and
the take, across processes because one Lua script does both and Redis runs scripts one at a time.
Redis scripts read Redis' own clock, so processes on hosts whose clocks differ still agree.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol

from switchboard.db.redis import shared_state_errors
from switchboard.observability.metrics import SHARED_STATE_ERRORS

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)
STORE_FAILURES = shared_state_errors()
"""Redis failing (unreachable, slow, full): the feature goes on without it."""
WINDOW_SECONDS = 60.0


class Want(NamedTuple):
    """``amount`` units from the bucket ``key`` that holds ``capacity``."""

    key: str
    capacity: int
    amount: int


@dataclass(frozen=True, slots=True)
class Taken:
    """``refused``: the index of the first bucket without room (nothing was taken), or None
    (all taken). ``levels``: each bucket's level after the take (before it, when refused)."""

    refused: int | None
    levels: tuple[float, ...]


class BucketStore(Protocol):
    async def take(self, wants: Sequence[Want]) -> Taken: ...

    def adjust_soon(self, key: str, capacity: int, delta: float) -> None:
        """Give back (negative) or take more (positive) after the fact; never below zero."""

    async def aclose(self) -> None: ...


def leaked(level: float, capacity: int, elapsed: float) -> float:
    return max(0.0, level - elapsed * capacity / WINDOW_SECONDS)


class MemoryBuckets:
    """Buckets of this process (one worker): a bounded LRU of the keys seen recently."""

    def __init__(self, max_keys: int = 200_000, clock: Callable[[], float] = time.monotonic):
        self.max_keys = max_keys
        self.clock = clock
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def level(self, key: str, capacity: int, now: float | None = None) -> float:
        now = self.clock() if now is None else now
        state = self._state.get(key)
        return 0.0 if state is None else leaked(state[0], capacity, now - state[1])

    def _set(self, key: str, level: float, now: float) -> None:
        state = self._state
        state[key] = (level, now)
        state.move_to_end(key)
        if len(state) > self.max_keys:
            state.popitem(last=False)

    async def take(self, wants: Sequence[Want]) -> Taken:
        now = self.clock()
        levels = [self.level(key, capacity, now) for key, capacity, _ in wants]
        for index, (want, level) in enumerate(zip(wants, levels, strict=True)):
            if level + want.amount > want.capacity:
                return Taken(index, tuple(levels))
        after = tuple(level + want.amount for want, level in zip(wants, levels, strict=True))
        for want, level in zip(wants, after, strict=True):
            self._set(want.key, level, now)
        return Taken(None, after)

    def adjust_soon(self, key: str, capacity: int, delta: float) -> None:
        now = self.clock()
        self._set(key, max(0.0, self.level(key, capacity, now) + delta), now)

    async def aclose(self) -> None:
        self._state.clear()


# KEYS: the buckets; ARGV: window, then capacity and amount of each bucket.
# Returns {refused index (0: all taken), level of each bucket...} (levels as strings: exact).
TAKE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local window = tonumber(ARGV[1])
local levels = {}
local refused = 0
for i, key in ipairs(KEYS) do
  local capacity = tonumber(ARGV[2 * i])
  local amount = tonumber(ARGV[2 * i + 1])
  local state = redis.call('HMGET', key, 'level', 'at')
  local level = tonumber(state[1]) or 0
  local at = tonumber(state[2]) or now
  level = math.max(0, level - (now - at) * capacity / window)
  levels[i] = level
  if refused == 0 and level + amount > capacity then refused = i end
end
local function save(key, level, capacity)
  local text = string.format('%.17g', level)
  redis.call('HSET', key, 'level', text, 'at', string.format('%.17g', now))
  redis.call('PEXPIRE', key, math.ceil(level / capacity * window * 1000) + 1000)
end
local out = {refused}
for i, key in ipairs(KEYS) do
  local level = levels[i]
  if refused == 0 then
    level = level + tonumber(ARGV[2 * i + 1])
    save(key, level, tonumber(ARGV[2 * i]))
  end
  out[#out + 1] = string.format('%.17g', level)
end
return out
"""

# KEYS: one bucket; ARGV: window, capacity, delta.
ADJUST = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local window = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'level', 'at')
local level = tonumber(state[1]) or 0
local at = tonumber(state[2]) or now
level = math.max(0, math.max(0, level - (now - at) * capacity / window) + tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'level', string.format('%.17g', level),
           'at', string.format('%.17g', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(level / capacity * window * 1000) + 1000)
return 1
"""


class RedisBuckets:
    """Buckets in Redis, shared by every worker and replica. If Redis fails, the request goes
    through (counted in ``switchboard_shared_state_errors_total``): an outage of the limiter's
    store must not become an outage of the gateway."""

    def __init__(self, redis: Redis, prefix: str = "sb:rl:") -> None:
        self.redis = redis
        self.prefix = prefix
        self._take = redis.register_script(TAKE)
        self._adjust = redis.register_script(ADJUST)
        self._pending: set[asyncio.Task[None]] = set()

    async def take(self, wants: Sequence[Want]) -> Taken:
        keys = [self.prefix + want.key for want in wants]
        args: list[float] = [WINDOW_SECONDS]
        for want in wants:
            args += [want.capacity, want.amount]
        try:
            answer = await self._take(keys=keys, args=args)
        except STORE_FAILURES:
            SHARED_STATE_ERRORS.labels("limits").inc()
            log.warning("rate limit store unavailable: request let through", exc_info=True)
            return Taken(None, tuple(float(want.amount) for want in wants))
        refused = int(answer[0])
        return Taken(refused - 1 if refused else None, tuple(float(x) for x in answer[1:]))

    def adjust_soon(self, key: str, capacity: int, delta: float) -> None:
        if math.isclose(delta, 0.0):
            return
        task = asyncio.get_running_loop().create_task(self._adjust_now(key, capacity, delta))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _adjust_now(self, key: str, capacity: int, delta: float) -> None:
        try:
            await self._adjust(keys=[self.prefix + key], args=[WINDOW_SECONDS, capacity, delta])
        except STORE_FAILURES:
            SHARED_STATE_ERRORS.labels("limits").inc()
            log.warning("rate limit store unavailable: reservation not settled", exc_info=True)

    async def aclose(self) -> None:
        """Let settlements in flight reach Redis (the client itself is closed by its owner)."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=5)

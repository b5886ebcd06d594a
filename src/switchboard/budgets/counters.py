"""What each budget holder has spent this month: in this process, or in Redis for every worker.

A counter holds the month's spend plus what requests in flight have reserved (their worst case),
so checking and reserving is one step: all or nothing over a key's and its owner's counters, in
one process because nothing awaits between check and take, across processes because one Lua
script does both. Settling adds the difference between the real cost and the reservation.
Counters are per calendar month (UTC); a new month starts from zero. At start a store is seeded
once per month from the usage table (Redis: by the first worker, marked so no other adds it
again), and again whenever the mark is gone (Redis restarted empty, or was down at start).
If Redis fails, requests go through (counted in
``switchboard_shared_state_errors_total{feature="budgets"}``).
"""

from __future__ import annotations

import asyncio
import logging
import math
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
KEEP_SECONDS = 40 * 24 * 3600  # a month's counters outlive the month (pages read them)
UNLIMITED = -1.0


@dataclass(frozen=True)
class Spend:
    tokens: float = 0.0
    money: float = 0.0


@dataclass(frozen=True)
class SpendWant:
    """Reserve ``tokens`` and ``money`` on holder ``key`` (``user:1``, ``key:2``) unless that
    would pass its limits (``UNLIMITED``: none)."""

    key: str
    tokens: float
    money: float
    token_limit: float = UNLIMITED
    money_limit: float = UNLIMITED

    def fits(self, spent: Spend) -> bool:
        over_tokens = 0 <= self.token_limit < spent.tokens + self.tokens
        over_money = 0 <= self.money_limit < spent.money + self.money
        return not (over_tokens or over_money)


@dataclass(frozen=True)
class Reserved:
    """``refused``: the index of the first holder over budget (nothing reserved), or None.
    ``spent``: each holder's spend before the reservation."""

    refused: int | None
    spent: tuple[Spend, ...]


class SpendStore(Protocol):
    async def reserve(self, month: str, wants: Sequence[SpendWant]) -> Reserved: ...

    def adjust_soon(self, month: str, key: str, tokens: float, money: float) -> None:
        """Add (or give back, negative) after the fact."""

    async def seed(self, month: str, spent: dict[str, Spend]) -> bool:
        """Add the month's spend so far, once per month and store; True if this call did."""

    async def seeded(self, month: str) -> bool:
        """Whether the store still holds the month's seed (Redis loses it when it restarts)."""

    async def spent(self, month: str, keys: Sequence[str]) -> list[Spend]: ...

    async def aclose(self) -> None: ...


class MemorySpend:
    """Counters of this process (one worker)."""

    def __init__(self) -> None:
        self._spent: dict[tuple[str, str], Spend] = {}
        self._seeded: set[str] = set()

    def _add(self, month: str, key: str, tokens: float, money: float) -> None:
        now = self._spent.get((month, key), Spend())
        self._spent[(month, key)] = Spend(now.tokens + tokens, now.money + money)

    async def reserve(self, month: str, wants: Sequence[SpendWant]) -> Reserved:
        spent = tuple(self._spent.get((month, want.key), Spend()) for want in wants)
        for index, (want, now) in enumerate(zip(wants, spent, strict=True)):
            if not want.fits(now):
                return Reserved(index, spent)
        for want in wants:
            self._add(month, want.key, want.tokens, want.money)
        return Reserved(None, spent)

    def adjust_soon(self, month: str, key: str, tokens: float, money: float) -> None:
        self._add(month, key, tokens, money)

    async def seed(self, month: str, spent: dict[str, Spend]) -> bool:
        if month in self._seeded:
            return False
        self._seeded.add(month)
        for key, value in spent.items():
            self._add(month, key, value.tokens, value.money)
        return True

    async def seeded(self, month: str) -> bool:
        return month in self._seeded

    async def spent(self, month: str, keys: Sequence[str]) -> list[Spend]:
        return [self._spent.get((month, key), Spend()) for key in keys]

    async def aclose(self) -> None:
        self._spent.clear()


# KEYS: the holders' hashes; ARGV: keep seconds, then tokens, money, token limit, money limit of
# each. Returns {refused index (0: none), tokens and money spent of each before} as strings.
RESERVE = """
local spent = {}
local refused = 0
for i, key in ipairs(KEYS) do
  local base = 4 * (i - 1) + 1
  local state = redis.call('HMGET', key, 't', 'm')
  local t, m = tonumber(state[1]) or 0, tonumber(state[2]) or 0
  spent[i] = {t, m}
  local tl, ml = tonumber(ARGV[base + 3]), tonumber(ARGV[base + 4])
  local over_t = tl >= 0 and t + tonumber(ARGV[base + 1]) > tl
  local over_m = ml >= 0 and m + tonumber(ARGV[base + 2]) > ml
  if refused == 0 and (over_t or over_m) then refused = i end
end
local out = {refused}
for i, key in ipairs(KEYS) do
  local base = 4 * (i - 1) + 1
  if refused == 0 then
    redis.call('HINCRBYFLOAT', key, 't', ARGV[base + 1])
    redis.call('HINCRBYFLOAT', key, 'm', ARGV[base + 2])
    redis.call('EXPIRE', key, tonumber(ARGV[1]))
  end
  out[#out + 1] = string.format('%.17g', spent[i][1])
  out[#out + 1] = string.format('%.17g', spent[i][2])
end
return out
"""

# KEYS: the month's marker, then the holders' hashes; ARGV: keep seconds, then tokens and money
# of each holder. Adds them only if the marker was not set yet (increments already made stay).
SEED = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[1])) == false then return 0 end
for i = 2, #KEYS do
  local t = tonumber(redis.call('HGET', KEYS[i], 't') or '0')
  local m = tonumber(redis.call('HGET', KEYS[i], 'm') or '0')
  redis.call('HSET', KEYS[i], 't', tostring(math.max(t, tonumber(ARGV[2 * i - 2]))),
             'm', tostring(math.max(m, tonumber(ARGV[2 * i - 1]))))
  redis.call('EXPIRE', KEYS[i], tonumber(ARGV[1]))
end
return 1
"""
"""Mark the month seeded and raise each counter to at least the usage table's spend. A counter
that exists already holds what was spent since Redis came back (empty), and those requests are
in the table too (once written): the larger of the two, not the sum, counts them once."""


class RedisSpend:
    """Counters in Redis, shared by every worker and replica (hash ``t``okens, ``m``oney)."""

    def __init__(self, redis: Redis, prefix: str = "sb:budget:") -> None:
        self.redis = redis
        self.prefix = prefix
        self._reserve = redis.register_script(RESERVE)
        self._seed = redis.register_script(SEED)
        self._pending: set[asyncio.Task[None]] = set()

    def _key(self, month: str, key: str) -> str:
        return f"{self.prefix}{month}:{key}"

    async def reserve(self, month: str, wants: Sequence[SpendWant]) -> Reserved:
        args: list[float] = [KEEP_SECONDS]
        for want in wants:
            args += [want.tokens, want.money, want.token_limit, want.money_limit]
        keys = [self._key(month, want.key) for want in wants]
        try:
            answer = await self._reserve(keys=keys, args=args)
        except STORE_FAILURES:
            SHARED_STATE_ERRORS.labels("budgets").inc()
            log.warning("budget store unavailable: request let through", exc_info=True)
            return Reserved(None, tuple(Spend() for _ in wants))
        values = [float(x) for x in answer[1:]]
        spent = tuple(Spend(values[i], values[i + 1]) for i in range(0, len(values), 2))
        refused = int(answer[0])
        return Reserved(refused - 1 if refused else None, spent)

    def adjust_soon(self, month: str, key: str, tokens: float, money: float) -> None:
        if math.isclose(tokens, 0.0) and math.isclose(money, 0.0):
            return
        task = asyncio.get_running_loop().create_task(self._adjust(month, key, tokens, money))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _adjust(self, month: str, key: str, tokens: float, money: float) -> None:
        name = self._key(month, key)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hincrbyfloat(name, "t", tokens)
                pipe.hincrbyfloat(name, "m", money)
                pipe.expire(name, KEEP_SECONDS)
                await pipe.execute()
        except STORE_FAILURES:
            SHARED_STATE_ERRORS.labels("budgets").inc()
            log.warning("budget store unavailable: spend not settled", exc_info=True)

    async def seed(self, month: str, spent: dict[str, Spend]) -> bool:
        keys = [f"{self.prefix}{month}:seeded"] + [self._key(month, k) for k in spent]
        args: list[float] = [KEEP_SECONDS]
        for value in spent.values():
            args += [value.tokens, value.money]
        try:
            return bool(await self._seed(keys=keys, args=args))
        except STORE_FAILURES:
            SHARED_STATE_ERRORS.labels("budgets").inc()
            log.warning("budget store unavailable: not seeded", exc_info=True)
            return False

    async def seeded(self, month: str) -> bool:
        try:
            return bool(await self.redis.exists(f"{self.prefix}{month}:seeded"))
        except STORE_FAILURES:
            SHARED_STATE_ERRORS.labels("budgets").inc()
            return False  # seed again once Redis is back

    async def spent(self, month: str, keys: Sequence[str]) -> list[Spend]:
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hmget(self._key(month, key), ["t", "m"])
                rows = await pipe.execute()
        except STORE_FAILURES:
            SHARED_STATE_ERRORS.labels("budgets").inc()
            return [Spend() for _ in keys]
        return [Spend(float(t or 0), float(m or 0)) for t, m in rows]

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=5)

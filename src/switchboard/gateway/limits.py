"""Per-key rate limits: requests and tokens per minute, on aiolimiter's leaky bucket.

A request reserves one request and an estimate of its tokens (prompt estimate + ``max_tokens``)
before it reaches the model; when the real usage is known the token reservation is reconciled.
Reserving never awaits, so under asyncio the check-and-take is atomic: with a limit of N and 5N
concurrent requests, exactly N pass. Limits live in this process (one gateway worker per
process; see docs/api.md for several workers).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field

from aiolimiter import AsyncLimiter

from switchboard.gateway.errors import GatewayError

WINDOW_SECONDS = 60.0


class Bucket:
    """One leaky bucket of ``capacity`` units per minute (aiolimiter) with reconciliation."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.limiter = AsyncLimiter(capacity, WINDOW_SECONDS)

    @property
    def level(self) -> float:
        """Units currently held (leaked down to now)."""
        self.limiter._leak()  # aiolimiter keeps the level private; refreshed before reading
        return float(self.limiter._level)

    async def try_take(self, amount: int) -> bool:
        """Take ``amount`` now if it fits; never waits (a full bucket answers False)."""
        if amount > self.capacity or not self.limiter.has_capacity(amount):
            return False
        # With capacity there, acquire() does not suspend: check and take are one atomic step.
        await self.limiter.acquire(amount)
        return True

    def adjust(self, delta: float) -> None:
        """Give back (negative) or take more (positive) after the fact; never below zero."""
        self.limiter._leak()
        self.limiter._level = max(0.0, self.limiter._level + delta)

    def remaining(self) -> int:
        return max(0, math.floor(self.capacity - self.level))

    def seconds_until(self, amount: int) -> float:
        """How long until ``amount`` units fit again."""
        excess = self.level + amount - self.capacity
        return 0.0 if excess <= 0 else excess * WINDOW_SECONDS / self.capacity

    def seconds_until_empty(self) -> float:
        return self.level * WINDOW_SECONDS / self.capacity


def _duration(seconds: float) -> str:
    """OpenAI's reset format: ``1s``, ``6m0s``, ``250ms``."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    whole = math.ceil(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


@dataclass
class KeyBuckets:
    rpm: int
    tpm: int
    requests: Bucket = field(init=False)
    tokens: Bucket = field(init=False)

    def __post_init__(self) -> None:
        self.requests = Bucket(self.rpm)
        self.tokens = Bucket(self.tpm)

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit-requests": str(self.rpm),
            "x-ratelimit-remaining-requests": str(self.requests.remaining()),
            "x-ratelimit-reset-requests": _duration(self.requests.seconds_until_empty()),
            "x-ratelimit-limit-tokens": str(self.tpm),
            "x-ratelimit-remaining-tokens": str(self.tokens.remaining()),
            "x-ratelimit-reset-tokens": _duration(self.tokens.seconds_until_empty()),
        }


@dataclass
class Reservation:
    """What one request holds; ``settle`` with the real token count once known."""

    buckets: KeyBuckets
    tokens: int
    settled: bool = False

    def settle(self, actual_tokens: int) -> None:
        if not self.settled:
            self.settled = True
            self.buckets.tokens.adjust(actual_tokens - self.tokens)

    def headers(self) -> dict[str, str]:
        return self.buckets.headers()


class RateLimiter:
    """Buckets per key (bounded LRU of keys seen recently)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, KeyBuckets] = OrderedDict()

    def buckets(self, subject: str, rpm: int, tpm: int) -> KeyBuckets:
        """The buckets of ``subject`` (a key or a user); recreated if its limits changed."""
        slot = subject
        found = self._buckets.get(slot)
        if found is None or (found.rpm, found.tpm) != (rpm, tpm):
            found = KeyBuckets(rpm, tpm)
            self._buckets[slot] = found
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(slot)
        return found

    async def reserve(self, subject: str, rpm: int, tpm: int, tokens: int) -> Reservation:
        """Take one request and ``tokens`` now, or raise 429 with ``Retry-After``."""
        buckets = self.buckets(subject, rpm, tpm)
        tokens = min(tokens, tpm)  # a request bigger than the whole budget still gets a turn
        if not await buckets.requests.try_take(1):
            raise self._limited(buckets, "requests", rpm, buckets.requests.seconds_until(1))
        if not await buckets.tokens.try_take(tokens):
            buckets.requests.adjust(-1)
            wait = buckets.tokens.seconds_until(tokens)
            raise self._limited(buckets, "tokens", tpm, wait)
        return Reservation(buckets, tokens)

    @staticmethod
    def _limited(buckets: KeyBuckets, kind: str, limit: int, wait: float) -> GatewayError:
        retry_after = max(1, math.ceil(wait))
        return GatewayError(
            429,
            f"Rate limit reached: {limit} {kind} per minute for this key. "
            f"Try again in {retry_after}s.",
            type="requests" if kind == "requests" else "tokens",
            code="rate_limit_exceeded",
            headers={**buckets.headers(), "Retry-After": str(retry_after)},
        )

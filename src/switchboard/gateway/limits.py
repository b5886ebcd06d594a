"""Rate limits: requests and tokens per minute, for the API key and, above it, for its owner.

A request reserves one request and an estimate of its tokens (prompt estimate + ``max_tokens``
for every choice) in all of its buckets at once, before it reaches the model; when the real
usage is known the token reservation is settled. The owner's limits cap the sum of their keys
and their chat, so minting more keys adds no quota. The buckets live in ``buckets.py``: in this
process, or in Redis when several workers or replicas must agree.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from switchboard.gateway.buckets import BucketStore, Taken, Want
from switchboard.gateway.errors import GatewayError

WINDOW_SECONDS = 60.0


class LimitScope(NamedTuple):
    """One holder of limits: ``kind`` ``key`` (an API key) or ``user`` (a person), ``id``."""

    kind: str
    id: int | None
    rpm: int
    tpm: int

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.id}"

    @property
    def bucket_keys(self) -> tuple[str, str]:
        """Its requests' and its tokens' buckets."""
        return _bucket_keys(self.kind, self.id)


@functools.lru_cache(maxsize=65536)
def _bucket_keys(kind: str, holder: int | None) -> tuple[str, str]:
    return f"{kind}:{holder}:requests", f"{kind}:{holder}:tokens"


def _duration(seconds: float) -> str:
    """OpenAI's reset format: ``1s``, ``6m0s``, ``250ms``."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    whole = math.ceil(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def _wait(level: float, amount: int, capacity: int) -> float:
    """Seconds until ``amount`` fits in a bucket at ``level``."""
    excess = level + amount - capacity
    return 0.0 if excess <= 0 else excess * WINDOW_SECONDS / capacity


def ratelimit_headers(scope: LimitScope, requests: float, tokens: float) -> dict[str, str]:
    """OpenAI's ``x-ratelimit-*`` headers for the first scope (the key; the user in the chat)."""
    return {
        "x-ratelimit-limit-requests": str(scope.rpm),
        "x-ratelimit-remaining-requests": str(max(0, math.floor(scope.rpm - requests))),
        "x-ratelimit-reset-requests": _duration(requests * WINDOW_SECONDS / scope.rpm),
        "x-ratelimit-limit-tokens": str(scope.tpm),
        "x-ratelimit-remaining-tokens": str(max(0, math.floor(scope.tpm - tokens))),
        "x-ratelimit-reset-tokens": _duration(tokens * WINDOW_SECONDS / scope.tpm),
    }


@dataclass
class Reservation:
    """What one request holds; ``settle`` with the real token count once known."""

    store: BucketStore
    token_wants: list[Want]
    scope: LimitScope
    levels: tuple[float, float]
    """The first scope's request and token levels right after the reservation."""
    settled: bool = field(default=False)

    @property
    def tokens(self) -> int:
        return self.token_wants[0].amount

    def settle(self, actual_tokens: int) -> None:
        if self.settled:
            return
        self.settled = True
        for want in self.token_wants:
            self.store.adjust_soon(want.key, want.capacity, actual_tokens - want.amount)
        requests, tokens = self.levels
        self.levels = (requests, max(0.0, tokens + actual_tokens - self.tokens))

    def headers(self) -> dict[str, str]:
        return ratelimit_headers(self.scope, *self.levels)


class RateLimiter:
    def __init__(self, store: BucketStore) -> None:
        self.store = store

    async def reserve(self, scopes: Sequence[LimitScope], tokens: int) -> Reservation:
        """Take one request and ``tokens`` in every scope now, or raise 429 with
        ``Retry-After``. A request bigger than a whole budget still gets a turn (it takes the
        whole budget)."""
        wants: list[Want] = []
        for scope in scopes:
            requests, tokens_key = scope.bucket_keys
            wants.append(Want(requests, scope.rpm, 1))
            wants.append(Want(tokens_key, scope.tpm, min(tokens, scope.tpm)))
        taken = await self.store.take(wants)
        if taken.refused is not None:
            raise self._limited(scopes, wants, taken)
        return Reservation(self.store, wants[1::2], scopes[0], (taken.levels[0], taken.levels[1]))

    async def aclose(self) -> None:
        await self.store.aclose()

    @staticmethod
    def _limited(scopes: Sequence[LimitScope], wants: list[Want], taken: Taken) -> GatewayError:
        assert taken.refused is not None
        refused = wants[taken.refused]
        scope = scopes[taken.refused // 2]
        kind = "requests" if taken.refused % 2 == 0 else "tokens"
        wait = _wait(taken.levels[taken.refused], refused.amount, refused.capacity)
        retry_after = max(1, math.ceil(wait))
        holder = "this key" if scope.kind == "key" else "your account (all its keys together)"
        return GatewayError(
            429,
            f"Rate limit reached: {refused.capacity} {kind} per minute for {holder}. "
            f"Try again in {retry_after}s.",
            type=kind,
            code="rate_limit_exceeded",
            headers={
                **ratelimit_headers(scopes[0], taken.levels[0], taken.levels[1]),
                "Retry-After": str(retry_after),
            },
        )

"""Response cache for deterministic requests (temperature 0, or a seed).

Keyed on the endpoint, the scope (each user's own cache by default, ``SWITCHBOARD_CACHE_SCOPE``)
and the request body exactly as the caller sent it (sorted keys; only ``user`` is left out), so
every field that shapes the answer (``n``, ``stream_options`` ...) is part of the key. In memory
by default (LRU bounded in entries and bytes, with a TTL); Redis when ``SWITCHBOARD_REDIS_URL`` is
set, so several gateway replicas share it. A cached stream is kept as its chunks' JSON. A cache
that fails (Redis down or slow) is a miss, never an error: ``SafeCache`` counts it and moves on.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import msgspec

from switchboard.db.redis import redis_client, shared_state_errors
from switchboard.gateway.accounting import Outcome
from switchboard.gateway.answers import Usage
from switchboard.gateway.chunks import DONE, Chunk, StreamItem
from switchboard.gateway.shaping import ChunkInfo, read_chunk
from switchboard.observability.metrics import CACHE_ERRORS

log = logging.getLogger(__name__)
STORE_FAILURES = shared_state_errors()
"""Redis failing (unreachable, slow, full): the feature goes on without it."""
# Fields that change neither what the model generates nor the shape of the answer.
_IGNORED_FIELDS = frozenset({"user"})


class CachedAnswer(msgspec.Struct, frozen=True):
    kind: Literal["json", "sse"]
    usage: Usage
    body: bytes = b""
    events: list[bytes] = []
    """For a stream: each chunk's JSON, as the caller received it."""

    @property
    def size(self) -> int:
        return len(self.body) + sum(len(event) for event in self.events)


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(CachedAnswer)


@dataclass(frozen=True)
class CachePolicy:
    """From the caller's ``Cache-Control``: ``no-cache`` skips the lookup, ``no-store`` also
    keeps the answer out of the cache."""

    read: bool = True
    write: bool = True

    @classmethod
    def from_header(cls, value: str | None) -> CachePolicy:
        if not value:
            return ALWAYS
        directives = {part.strip().lower() for part in value.split(",")}
        if "no-store" in directives:
            return cls(read=False, write=False)
        return cls(read="no-cache" not in directives)


ALWAYS = CachePolicy()


def is_cacheable(body: dict[str, Any]) -> bool:
    """Deterministic: temperature 0, or a seed given."""
    return body.get("temperature") == 0 or body.get("seed") is not None


def cache_key(path: str, body: dict[str, Any], scope: str) -> str:
    """``body`` is the caller's JSON object as sent; ``scope`` is ``user:<id>`` or ``global``."""
    canonical = {k: v for k, v in body.items() if k not in _IGNORED_FIELDS}
    encoded = msgspec.json.encode([path, scope, canonical], order="sorted")
    return "sb:cache:v2:" + hashlib.sha256(encoded).hexdigest()


CACHED_KINDS = frozenset({"chat", "completion"})
"""What the response cache keeps (deterministic requests of these surfaces only)."""


def request_cache_key(
    kind: str, path: str, body: dict[str, Any], scope: str, user_id: int | None
) -> str | None:
    """The key of a request's answer, or None when it is not kept (another surface, or an
    answer not deterministic enough); ``scope`` is the setting: ``global``, or per user."""
    if kind not in CACHED_KINDS or not is_cacheable(body):
        return None
    return cache_key(path, body, "global" if scope == "global" else f"user:{user_id}")


async def replay(
    cached: CachedAnswer, outcome: Outcome, owned: contextlib.AsyncExitStack
) -> AsyncGenerator[list[StreamItem], None]:
    """A cached stream as one batch, after an empty one (the start: from there, closing the
    generator closes ``owned``, the request's books)."""
    async with owned:
        yield []
        batch: list[StreamItem] = []
        for data in cached.events:
            info = read_chunk(data)
            batch.append(Chunk(data, info.text if isinstance(info, ChunkInfo) else ""))
        batch.append(DONE)
        outcome.delivered = True
        yield batch


class ResponseCache(Protocol):
    async def get(self, key: str) -> CachedAnswer | None: ...
    async def put(self, key: str, answer: CachedAnswer) -> None: ...
    async def aclose(self) -> None: ...


class MemoryCache:
    """LRU + TTL, bounded by entries and by bytes."""

    def __init__(self, max_entries: int, max_bytes: int, ttl: float) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.bytes = 0
        self._entries: OrderedDict[str, tuple[float, CachedAnswer]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> CachedAnswer | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, answer = entry
        if expires < time.monotonic():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return answer

    async def put(self, key: str, answer: CachedAnswer) -> None:
        if answer.size > self.max_bytes or self.max_entries <= 0:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (time.monotonic() + self.ttl, answer)
        self.bytes += answer.size
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        _, answer = self._entries.pop(key)
        self.bytes -= answer.size

    async def aclose(self) -> None:
        self._entries.clear()
        self.bytes = 0


class RedisCache:
    """Shared cache for several replicas: msgpack values with a TTL (Redis evicts by its policy).

    Every call has a socket timeout: a hung Redis makes a miss, not a hung request."""

    def __init__(self, url: str, ttl: float, max_entry_bytes: int, timeout: float) -> None:
        self.redis = redis_client(url, timeout)
        self.ttl = ttl
        self.max_entry_bytes = max_entry_bytes

    async def get(self, key: str) -> CachedAnswer | None:
        raw = await self.redis.get(key)
        if not isinstance(raw, bytes):
            return None
        try:
            return _decoder.decode(raw)
        except msgspec.DecodeError:
            return None

    async def put(self, key: str, answer: CachedAnswer) -> None:
        if answer.size <= self.max_entry_bytes:
            await self.redis.set(key, _encoder.encode(answer), px=int(self.ttl * 1000))

    async def aclose(self) -> None:
        await self.redis.aclose()


class SafeCache:
    """A cache whose failures are misses: errors are counted (``switchboard_cache_errors_total``)
    and logged, never raised into a request."""

    def __init__(self, backend: ResponseCache, max_entry_bytes: int) -> None:
        self.backend = backend
        self.max_entry_bytes = max_entry_bytes

    async def get(self, key: str) -> CachedAnswer | None:
        try:
            return await self.backend.get(key)
        except STORE_FAILURES as exc:
            self._failed("get", exc)
            return None

    async def put(self, key: str, answer: CachedAnswer) -> None:
        try:
            await self.backend.put(key, answer)
        except STORE_FAILURES as exc:
            self._failed("put", exc)

    async def aclose(self) -> None:
        await self.backend.aclose()

    @staticmethod
    def _failed(operation: str, exc: Exception) -> None:
        CACHE_ERRORS.labels(operation).inc()
        log.warning("response cache %s failed: %s", operation, exc or type(exc).__name__)

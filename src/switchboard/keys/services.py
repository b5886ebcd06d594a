"""Mint, verify, list and revoke API keys.

A key is ``sk-sb-`` + 256 random bits (base64url). Only its SHA-256 is stored, with a short display
prefix; SHA-256 (not a slow hash) is right for secrets with this much entropy, and lets a lookup
use the unique index. Verified keys are cached briefly so a request costs no database round trip;
revoking through this service drops the entry at once, other workers forget it within
``cache_ttl`` (``SWITCHBOARD_KEY_CACHE_SECONDS``, 1 s by default), as they do a disabled user.
A key in use is looked up again in the background in the last ``REFRESH_AHEAD`` of its entry's
time, so a steady caller never waits for the lookup (it held one request 2 ms every
``cache_ttl``, measured on SQLite at one connection).

Keys are looked up with one query (``KEY_BY_HASH``) on a thread of their own that keeps its
SQLite connection (``db.bulk.select_rows``; PostgreSQL's pool keeps its connections anyway):
Piccolo runs each SQLite query on a new connection and thread, about 2 ms of the core a lookup,
and a worker looks up each key in use once a ``cache_ttl``. A service made without that thread
(the CLI's) mints, lists and revokes keys but does not verify them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import secrets
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from switchboard.db.bulk import select_rows
from switchboard.db.engine import AnyEngine
from switchboard.keys.tables import ApiKey
from switchboard.observability.metrics import timed

log = logging.getLogger(__name__)

KEY_PREFIX = "sk-sb-"
REFRESH_AHEAD = 0.1
"""The share of ``cache_ttl`` at the end of an entry's time in which a request starts a
background lookup (100 ms of the default second: a lookup takes a few milliseconds)."""
LAST_USED_PRECISION = dt.timedelta(minutes=1)
"""A key's last-used time is written at most once a minute per worker."""
KEY_BY_HASH = (
    "SELECT k.id, k.rpm, k.tpm, k.expires_at, k.revoked_at, u.id AS user_id, u.username, "
    "u.is_active, u.default_rpm, u.default_tpm "
    'FROM api_keys k JOIN users u ON u.id = k."user" WHERE k.key_hash = ?'
)
"""What a lookup reads: the key and its owner (the columns of ``ApiKey`` and ``User``)."""


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class KeyOwner:
    """What a verified key grants: whose it is and its limits."""

    key_id: int
    user_id: int
    username: str
    rpm: int
    tpm: int
    expires_at: dt.datetime | None
    user_rpm: int = 0
    """The owner's limits over all their keys together."""
    user_tpm: int = 0


@dataclass(frozen=True)
class MintedKey:
    key_id: int
    secret: str
    prefix: str


LISTED_COLUMNS = (
    ApiKey.id,
    ApiKey.name,
    ApiKey.prefix,
    ApiKey.rpm,
    ApiKey.tpm,
    ApiKey.created_at,
    ApiKey.expires_at,
    ApiKey.revoked_at,
    ApiKey.last_used_at,
)


class KeyLimitError(ValueError):
    """The user already holds as many active keys as allowed."""


class KeyService:
    def __init__(
        self,
        cache_ttl: float = 1.0,
        max_per_user: int = 20,
        lookups: tuple[AnyEngine, Executor] | None = None,
    ) -> None:
        """``lookups``: the engine and a one-thread executor that keeps its SQLite connection
        (``db.bulk.lookup_thread``), for ``authenticate``."""
        self.cache_ttl = cache_ttl
        self.max_per_user = max_per_user
        self.lookups = lookups
        self._cache: dict[str, tuple[float, KeyOwner | None]] = {}
        self._loading: dict[str, asyncio.Future[KeyOwner | None]] = {}
        self._revocations = 0
        self._stamped: dict[int, dt.datetime] = {}
        """When this worker last wrote each key's last-used time."""

    async def mint(
        self,
        user_id: int,
        *,
        name: str = "",
        rpm: int | None = None,
        tpm: int | None = None,
        expires_days: float | None = None,
    ) -> MintedKey:
        held = await ApiKey.count().where(
            (ApiKey.user == user_id)
            & ApiKey.revoked_at.is_null()
            & (ApiKey.expires_at.is_null() | (ApiKey.expires_at > now()))
        )
        if held >= self.max_per_user:
            raise KeyLimitError(
                f"You already hold {held} active keys, the most allowed: revoke one first."
            )
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        prefix = secret[: len(KEY_PREFIX) + 6]
        expires_at = now() + dt.timedelta(days=expires_days) if expires_days else None
        key = ApiKey(
            user=user_id,
            name=name[:100],
            prefix=prefix,
            key_hash=hash_key(secret),
            rpm=rpm,
            tpm=tpm,
            expires_at=expires_at,
        )
        await key.save()
        return MintedKey(key_id=int(key.id), secret=secret, prefix=prefix)

    async def authenticate(self, secret: str) -> KeyOwner | None:
        """The owner of a valid (known, unexpired, unrevoked, active-user) key, else None."""
        if not secret.startswith(KEY_PREFIX) or len(secret) > 128:
            return None
        digest = hash_key(secret)
        cached = self._cache.get(digest)
        left = cached[0] - time.monotonic() if cached else 0.0
        if cached and left > 0:
            owner = cached[1]
            if left < self.cache_ttl * REFRESH_AHEAD and digest not in self._loading:
                self._load_in_background(digest)
        else:
            owner = await self._load_once(digest)
        if owner and owner.expires_at and owner.expires_at <= now():
            return None
        return owner

    async def _load_once(self, digest: str) -> KeyOwner | None:
        """One database lookup per key at a time: when a cached key expires under load, the
        requests in flight share the reload instead of each running its own."""
        loading = self._loading.get(digest) or self._start_loading(digest)
        return await asyncio.shield(loading)

    def _start_loading(self, digest: str) -> asyncio.Future[KeyOwner | None]:
        loading = asyncio.ensure_future(self._load_and_cache(digest))
        self._loading[digest] = loading
        loading.add_done_callback(lambda _: self._loading.pop(digest, None))
        return loading

    def _load_in_background(self, digest: str) -> None:
        """Refresh a cached key nobody waits for; while it runs (or if it fails) requests go
        on with the entry they have until it expires."""
        self._start_loading(digest).add_done_callback(_log_failed_refresh)

    async def _load_and_cache(self, digest: str) -> KeyOwner | None:
        while True:  # a key revoked here while the lookup ran may have been read before it
            revocations, started = self._revocations, time.monotonic()
            with timed("key_lookup"):
                owner = await self._load(digest)
            if revocations == self._revocations:
                break
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (started + self.cache_ttl, owner)
        return owner

    async def _load(self, digest: str) -> KeyOwner | None:
        row = await self._read(digest)
        if row is None or row["revoked_at"] is not None or not row["is_active"]:
            return None
        return KeyOwner(
            key_id=row["id"],
            user_id=row["user_id"],
            username=row["username"],
            rpm=row["rpm"] if row["rpm"] is not None else row["default_rpm"],
            tpm=row["tpm"] if row["tpm"] is not None else row["default_tpm"],
            expires_at=row["expires_at"],
            user_rpm=row["default_rpm"],
            user_tpm=row["default_tpm"],
        )

    async def _read(self, digest: str) -> dict[str, Any] | None:
        if self.lookups is None:
            raise RuntimeError("this KeyService was made without lookups: it cannot verify keys")
        engine, thread = self.lookups
        rows = await select_rows(engine, KEY_BY_HASH, (digest,), thread)
        return rows[0] if rows else None

    async def revoke(self, key_id: int, *, user_id: int | None = None) -> bool:
        """Revoke a key (only the owner's when ``user_id`` is given). False if none matched."""
        query = ApiKey.update({ApiKey.revoked_at: now()}).where(
            (ApiKey.id == key_id) & ApiKey.revoked_at.is_null()
        )
        if user_id is not None:
            query = query.where(ApiKey.user == user_id)
        changed = await query.returning(ApiKey.key_hash)
        self._revocations += 1
        for row in changed:
            self._cache.pop(row["key_hash"], None)
        return bool(changed)

    async def list_for_user(self, user_id: int) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = (
            await ApiKey.select(*LISTED_COLUMNS)
            .where(ApiKey.user == user_id)
            .order_by(ApiKey.id, ascending=False)
        )
        return rows

    async def touch(self, key_ids: set[int], when: dt.datetime) -> None:
        """Record that keys were used (by the usage writer, with the batch's newest time), to
        the minute: a key this worker stamped less than ``LAST_USED_PRECISION`` before ``when``
        is left as it is. One statement for the keys that are due; none most of the time (it
        was one a flush, twice a second under load, taking the core from requests)."""
        due = sorted(
            key_id
            for key_id in key_ids
            if (stamped := self._stamped.get(key_id)) is None
            or when - stamped >= LAST_USED_PRECISION
        )
        if due:
            await ApiKey.update({ApiKey.last_used_at: when}).where(ApiKey.id.is_in(due))
            self._stamped.update(dict.fromkeys(due, when))


def _log_failed_refresh(refresh: asyncio.Future[KeyOwner | None]) -> None:
    if not refresh.cancelled() and (error := refresh.exception()) is not None:
        log.warning("background API key lookup failed: the cached entry is kept until it "
                    "expires", extra={"error": repr(error)})  # fmt: skip


async def count_active(when: dt.datetime) -> int:
    """Keys neither revoked nor expired at ``when``."""
    live = ApiKey.revoked_at.is_null() & (ApiKey.expires_at.is_null() | (ApiKey.expires_at > when))
    return int(await ApiKey.count().where(live))


async def key_prefixes(key_ids: list[int]) -> dict[int, str]:
    """Keys as metrics show them: ``sk-sb-abcd…`` (names are the owner's, not for dashboards)."""
    if not key_ids:
        return {}
    rows = await ApiKey.select(ApiKey.id, ApiKey.prefix).where(ApiKey.id.is_in(key_ids))
    return {int(row["id"]): f"{row['prefix']}…" for row in rows}


async def key_owner_labels(key_ids: list[int]) -> dict[int, str]:
    """Keys as the admin pages show them: ``sk-sb-abcd… (owner)``."""
    if not key_ids:
        return {}
    owner = ApiKey.user.username.as_alias("owner")
    rows = await ApiKey.select(ApiKey.id, ApiKey.prefix, owner).where(ApiKey.id.is_in(key_ids))
    return {int(row["id"]): f"{row['prefix']}… ({row['owner']})" for row in rows}


async def key_labels(key_ids: list[int]) -> dict[int, str]:
    """How keys are shown in usage reports: ``sk-sb-abcd…`` and the key's name, if any."""
    if not key_ids:
        return {}
    rows = await ApiKey.select(ApiKey.id, ApiKey.prefix, ApiKey.name).where(
        ApiKey.id.is_in(key_ids)
    )
    return {
        int(row["id"]): f"{row['prefix']}…" + (f" ({row['name']})" if row["name"] else "")
        for row in rows
    }

"""The long-lived resources (lifespan): database, model-server pool, usage writer, cache, limits,
budgets and the gateway, opened in order and closed in reverse; handed out by injection."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from switchboard.accounts.sessions import DatabaseStore
from switchboard.budgets.counters import MemorySpend, RedisSpend
from switchboard.budgets.service import BudgetService
from switchboard.chat.generations import Generations, LocalSignals, RedisSignals
from switchboard.db.bulk import close_kept_thread, lookup_thread, reader_thread
from switchboard.db.engine import AnyEngine, build_engine, close_engine, open_engine
from switchboard.db.registry import install_engine, migrate
from switchboard.gateway.buckets import MemoryBuckets, RedisBuckets
from switchboard.gateway.cache import MemoryCache, RedisCache, ResponseCache, SafeCache
from switchboard.gateway.limits import RateLimiter
from switchboard.gateway.service import GatewayService
from switchboard.gateway.upstream import UpstreamPool
from switchboard.keys.services import KeyService
from switchboard.observability.business import refresh_forever
from switchboard.responses.service import ResponsesService
from switchboard.responses.store import ResponseStore
from switchboard.settings import Settings
from switchboard.usage.business import business_figures
from switchboard.usage.queries import prune
from switchboard.usage.rows import UsageEvent
from switchboard.usage.writer import UsageWriter

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)
RETENTION_EVERY_SECONDS = 3600.0
SHUTDOWN_STATUS = 503  # recorded for a stream cut because the gateway stopped


@dataclass
class Resources:
    """Long-lived things the lifespan opens and closes; handed out by dependency injection."""

    settings: Settings
    db: AnyEngine
    pool: UpstreamPool
    keys: KeyService
    usage: UsageWriter
    cache: SafeCache
    gateway: GatewayService
    budgets: BudgetService
    responses: ResponsesService
    generations: Generations
    """The chat's answers being written (tasks of this process), and the signals between
    workers."""
    shared: Redis | None = None
    """The Redis client behind sessions, limits and the throttle (None: in process)."""


def build_cache(settings: Settings) -> ResponseCache:
    url = settings.cache_redis_url or settings.redis_url
    if url:
        return RedisCache(url, settings.cache_ttl, settings.cache_max_bytes, settings.redis_timeout)
    return MemoryCache(settings.cache_max_entries, settings.cache_max_bytes, settings.cache_ttl)


async def _prune_forever(settings: Settings, sessions_in_database: bool) -> None:
    """Retention, hourly: usage rows older than the setting (in small batches), stored
    responses older than theirs, and expired sessions (Redis expires its own)."""
    while True:
        try:
            if settings.usage_retention_days:
                days = settings.usage_retention_days
                deleted = await prune(dt.datetime.now(dt.UTC) - dt.timedelta(days=days))
                if deleted:
                    log.info("pruned old usage rows", extra={"deleted": deleted})
            if settings.responses_retention_days:
                days = settings.responses_retention_days
                forgotten = await ResponseStore().prune(
                    dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
                )
                if forgotten:
                    log.info("forgot old stored responses", extra={"deleted": forgotten})
            if sessions_in_database:
                purged = await DatabaseStore().purge_expired()
                if purged:
                    log.info("purged expired sessions", extra={"deleted": purged})
        except Exception:
            log.exception("retention failed")
        await asyncio.sleep(RETENTION_EVERY_SECONDS)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@asynccontextmanager
async def open_resources(
    settings: Settings,
    upstream_transport: httpx.AsyncBaseTransport | None = None,
    shared: Redis | None = None,
) -> AsyncIterator[Resources]:
    """Open everything in order; on the way out: stop taking completions and let streams in
    flight finish (``shutdown_grace``), flush usage, then close the pool, the cache and the
    database. Each closing step runs even if one before it failed."""
    async with contextlib.AsyncExitStack() as stack:
        db = build_engine(settings.resolved_database_url)
        install_engine(db)
        await open_engine(db, settings.database_pool_size)
        stack.push_async_callback(close_engine, db)
        await migrate(settings.resolved_database_url)
        if shared is not None:
            stack.push_async_callback(shared.aclose)
        lookups = lookup_thread("key-lookups")
        stack.push_async_callback(close_kept_thread, lookups)
        keys = KeyService(settings.key_cache_seconds, settings.max_keys_per_user, (db, lookups))

        async def touch_keys(batch: list[UsageEvent]) -> None:
            used = {event.key_id for event in batch if event.key_id is not None}
            await keys.touch(used, max(event.at for event in batch))

        cache = SafeCache(build_cache(settings), settings.cache_max_bytes)
        stack.push_async_callback(cache.aclose)
        pool = UpstreamPool(settings, transport=upstream_transport)
        stack.push_async_callback(pool.aclose)
        usage = UsageWriter(
            flush_interval=settings.usage_flush_interval,
            batch_size=settings.usage_batch_size,
            max_buffered=settings.usage_buffer_max,
            on_flushed=touch_keys,
        )
        usage.start()
        stack.push_async_callback(usage.aclose)  # flushes what is buffered
        await pool.start()
        limiter = RateLimiter(RedisBuckets(shared) if shared is not None else MemoryBuckets())
        stack.push_async_callback(limiter.aclose)
        spend = RedisSpend(shared) if shared is not None else MemorySpend()
        stack.push_async_callback(spend.aclose)
        budgets = BudgetService(spend, settings.budget_refresh_seconds, settings.budget_currency)
        await budgets.load()
        await budgets.seed()
        gateway = GatewayService(settings, pool, limiter, cache, usage, budgets)
        reads = reader_thread("business-reads")  # long aggregates, when the core is idle
        stack.push_async_callback(close_kept_thread, reads)
        figures = refresh_forever(
            settings.business_metrics_interval, functools.partial(business_figures, db, reads)
        )
        background = [asyncio.create_task(figures, name="business")]
        background.append(
            asyncio.create_task(_prune_forever(settings, shared is None), name="retention")
        )
        background.append(asyncio.create_task(budgets.refresh_forever(), name="budgets"))
        for task in background:
            stack.push_async_callback(_cancel, task)
        generations = Generations(RedisSignals(shared) if shared is not None else LocalSignals())
        await generations.start()
        # after the drain (the chat's answers are streams in flight: they get its grace period),
        # before usage's last flush: an answer still running then ends as stopped
        stack.push_async_callback(generations.aclose)
        stack.push_async_callback(_drain, gateway, settings.shutdown_grace)
        responses = ResponsesService(gateway, ResponseStore())
        yield Resources(
            settings, db, pool, keys, usage, cache, gateway, budgets, responses, generations, shared
        )


async def _drain(gateway: GatewayService, grace: float) -> None:
    if not await gateway.drain(grace):
        cut = gateway.in_flight.abandon(SHUTDOWN_STATUS)
        log.warning(
            "streams still running after the shutdown grace period: closing them",
            extra={"streams": cut},
        )

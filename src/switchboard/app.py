"""The application factory: settings → resources (lifespan) → routes, DI and error handling."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware.session.server_side import ServerSideSessionConfig
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router
from litestar.stores.base import Store
from litestar.stores.redis import RedisStore

from switchboard.accounts.admin import AdminController
from switchboard.accounts.controllers import AccountsController
from switchboard.accounts.sessions import DatabaseStore, session_middleware
from switchboard.accounts.throttle import MemoryFailures, RedisFailures, SignInThrottle
from switchboard.budgets.controllers import BudgetsController
from switchboard.budgets.counters import MemorySpend, RedisSpend
from switchboard.budgets.service import BudgetService
from switchboard.chat.controllers import ChatController
from switchboard.chat.history_controllers import ChatHistoryController
from switchboard.chat.quotas import ChatQuotas, MemoryQuotas, RedisQuotas
from switchboard.chat.transfer_controllers import ChatTransferController
from switchboard.db.engine import UNAVAILABLE as DATABASE_UNAVAILABLE
from switchboard.db.engine import AnyEngine, build_engine, close_engine, open_engine
from switchboard.db.redis import connection_errors, redis_client
from switchboard.db.registry import install_engine, migrate
from switchboard.gateway.buckets import MemoryBuckets, RedisBuckets
from switchboard.gateway.cache import MemoryCache, RedisCache, ResponseCache, SafeCache
from switchboard.gateway.errors import as_gateway_error
from switchboard.gateway.limits import RateLimiter
from switchboard.gateway.openapi import publish_request_schemas
from switchboard.gateway.routes import CompletionsController
from switchboard.gateway.service import GatewayService
from switchboard.gateway.upstream import UpstreamPool
from switchboard.gateway.usage_routes import UsageApiController
from switchboard.health.controllers import HealthController
from switchboard.keys.controllers import KeysController
from switchboard.keys.services import KeyService
from switchboard.observability.access import AccessMiddleware
from switchboard.observability.business import refresh_forever
from switchboard.observability.controllers import MetricsController
from switchboard.observability.logging import configure_logging
from switchboard.observability.request_id import add_request_id_header
from switchboard.settings import Settings, get_settings
from switchboard.usage.business import business_figures
from switchboard.usage.controllers import UsageController
from switchboard.usage.queries import prune
from switchboard.usage.rows import UsageEvent
from switchboard.usage.writer import UsageWriter
from switchboard.web.csrf import CSRFGuard
from switchboard.web.errors import exception_handler
from switchboard.web.forwarded import ForwardedHeaders
from switchboard.web.headers import docs_render_plugins, security_headers
from switchboard.web.inputs import refuse_hostile_input
from switchboard.web.templating import template_config, templates_dir

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
    shared: Redis | None = None
    """The Redis client behind sessions, limits and the throttle (None: in process)."""


def build_cache(settings: Settings) -> ResponseCache:
    url = settings.cache_redis_url or settings.redis_url
    if url:
        return RedisCache(url, settings.cache_ttl, settings.cache_max_bytes, settings.redis_timeout)
    return MemoryCache(settings.cache_max_entries, settings.cache_max_bytes, settings.cache_ttl)


async def _prune_forever(settings: Settings, sessions_in_database: bool) -> None:
    """Retention, hourly: usage rows older than the setting (in small batches) and expired
    sessions (Redis expires its own)."""
    while True:
        try:
            if settings.usage_retention_days:
                days = settings.usage_retention_days
                deleted = await prune(dt.datetime.now(dt.UTC) - dt.timedelta(days=days))
                if deleted:
                    log.info("pruned old usage rows", extra={"deleted": deleted})
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
        keys = KeyService(settings.key_cache_seconds, settings.max_keys_per_user)

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
        figures = refresh_forever(settings.business_metrics_interval, business_figures)
        background = [asyncio.create_task(figures, name="business")]
        background.append(asyncio.create_task(_prune_forever(settings, shared is None),
                                              name="retention"))  # fmt: skip
        background.append(asyncio.create_task(budgets.refresh_forever(), name="budgets"))
        for task in background:
            stack.push_async_callback(_cancel, task)
        stack.push_async_callback(_drain, gateway, settings.shutdown_grace)
        yield Resources(settings, db, pool, keys, usage, cache, gateway, budgets, shared)


async def _drain(gateway: GatewayService, grace: float) -> None:
    if not await gateway.drain(grace):
        cut = gateway.in_flight.abandon(SHUTDOWN_STATUS)
        log.warning("streams still running after the shutdown grace period: closing them",
                    extra={"streams": cut})  # fmt: skip


# Anchored: an unanchored "/v1" would also exempt "/chat/v1..." from sessions and CSRF.
API_PATH = r"^/v1(/|$)"
NO_SESSION_PATHS = [API_PATH, r"^/metrics$", r"^/healthz$", r"^/readyz$", r"^/static/"]


def cookie_name(settings: Settings, name: str) -> str:
    """``__Host-`` prefixed behind HTTPS: the browser then insists on Secure, path / and no
    domain, so a sibling subdomain cannot plant or overwrite it."""
    return f"__Host-{name}" if settings.secure_cookies else name


def session_config(settings: Settings) -> ServerSideSessionConfig:
    """Server-side sessions (accounts/sessions.py): an opaque id in an HttpOnly, SameSite=Lax
    cookie, Secure behind HTTPS; a sliding lifetime of ``session_days``."""
    return ServerSideSessionConfig(
        key=cookie_name(settings, "sb_session"),
        max_age=settings.session_days * 24 * 3600,
        renew_on_access=True,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        exclude=NO_SESSION_PATHS,
    )


def csrf_guard(settings: Settings) -> CSRFGuard:
    """web/csrf.py: the request's origin, and a token bound to the session (a visitor's to a
    signed cookie); the public URL is an origin of ours even when the proxy rewrites Host."""
    return CSRFGuard(
        settings.secret_key,
        cookie_name(settings, "csrftoken"),
        secure=settings.secure_cookies,
        trusted_origins=[settings.public_url] if settings.public_url else [],
        exclude=NO_SESSION_PATHS,
    )


def session_store(shared: Redis | None) -> Store:
    if shared is not None:
        return RedisStore(shared, namespace="sb:session")
    return DatabaseStore()


def create_app(
    settings: Settings | None = None, *, upstream_transport: httpx.AsyncBaseTransport | None = None
) -> Litestar:
    """Build the app. ``upstream_transport`` lets unit tests stand in for the model server."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    # one client for the state every worker must share (limits, throttle, sessions)
    shared = (
        redis_client(settings.redis_url, settings.redis_timeout) if settings.redis_url else None
    )
    # what the sessions' store raises when it cannot be reached: Redis', or the database's
    store_errors = connection_errors() if shared is not None else DATABASE_UNAVAILABLE
    throttle = SignInThrottle(RedisFailures(shared) if shared is not None else MemoryFailures())
    quotas = ChatQuotas(
        RedisQuotas(shared) if shared is not None else MemoryQuotas(),
        followers=settings.max_follower_streams,
        imports_per_hour=settings.imports_per_hour,
        lease=settings.upstream_total_timeout + 60,  # a follower waits that long at most
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_resources(settings, upstream_transport, shared) as resources:
            app.state.resources = resources
            log.info("switchboard ready on %s (database %s)", settings.base_url,
                     type(resources.db).__name__)  # fmt: skip
            yield

    def provide(attribute: str) -> Provide:
        def dependency(state: State) -> Any:
            return getattr(state.resources, attribute)

        return Provide(dependency, sync_to_thread=False)

    app = Litestar(
        route_handlers=[
            HealthController,
            MetricsController,
            CompletionsController,
            UsageApiController,
            AccountsController,
            ChatController,
            ChatHistoryController,
            ChatTransferController,
            KeysController,
            UsageController,
            AdminController,
            BudgetsController,
            create_static_files_router(
                path="/static", directories=[templates_dir() / "static"], name="static"
            ),
        ],
        dependencies={
            "settings": Provide(lambda: settings, sync_to_thread=False),
            "throttle": Provide(lambda: throttle, sync_to_thread=False),
            "quotas": Provide(lambda: quotas, sync_to_thread=False),
            "db": provide("db"),
            "upstream_pool": provide("pool"),
            "gateway": provide("gateway"),
            "keys": provide("keys"),
            "usage": provide("usage"),
            "shared_state": provide("shared"),
            "budgets": provide("budgets"),
        },
        lifespan=[lifespan],
        before_send=[add_request_id_header, security_headers(settings)],
        before_request=refuse_hostile_input(re.compile(API_PATH)),
        middleware=[
            session_middleware(session_config(settings), store_errors, shared is not None),
            csrf_guard(settings),  # inside the sessions: it reads the session's token
        ],
        stores={"sessions": session_store(shared)},
        exception_handlers={Exception: exception_handler(as_gateway_error)},
        template_config=template_config(),
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Switchboard",
            version="0.1.0",
            description="OpenAI-compatible gateway and workspace in front of vLLM.",
            path="/docs",
            render_plugins=docs_render_plugins(settings),  # no UI in production
            components=Components(
                security_schemes={
                    "BearerAuth": SecurityScheme(
                        type="http", scheme="bearer", description="An API key: `sk-sb-...`"
                    )
                }
            ),
        ),
        logging_config=None,  # ours (JSON lines on stdout) is already in place
        debug=False,
    )
    publish_request_schemas(app.openapi_schema, example_model=settings.default_model)
    # Wrapped here, not as Litestar middleware, so that unrouted requests (404) are counted too.
    app.asgi_handler = AccessMiddleware(app.asgi_handler)
    # Outermost: the access log, the throttle and /metrics' loopback check see the real client.
    app.asgi_handler = ForwardedHeaders(app.asgi_handler, settings.trusted_proxy_networks)
    return app

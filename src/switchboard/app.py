"""The application factory: settings → resources (lifespan) → two apps, one entry point.

The workspace (pages, sessions, CSRF, templates) is this Litestar app; the API (``/v1``, its
docs, the probes and ``/metrics``) is another (api.py), reached by path before any of the
workspace's middleware runs. The workspace app owns the lifespan: it opens the resources both
use and hands them to both.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware.session.server_side import ServerSideSessionConfig
from litestar.plugins.htmx import HTMXPlugin
from litestar.routes import BaseRoute
from litestar.static_files import create_static_files_router
from litestar.stores.base import Store
from litestar.stores.redis import RedisStore

from switchboard.accounts.admin import AdminController
from switchboard.accounts.controllers import AccountsController
from switchboard.accounts.sessions import DatabaseStore, session_middleware
from switchboard.accounts.throttle import MemoryFailures, RedisFailures, SignInThrottle
from switchboard.api import ApiEdge, create_api, is_api_path
from switchboard.budgets.controllers import BudgetsController
from switchboard.chat.controllers import ChatController
from switchboard.chat.history_controllers import ChatHistoryController
from switchboard.chat.project_controllers import ProjectController
from switchboard.chat.quotas import ChatQuotas, MemoryQuotas, RedisQuotas
from switchboard.chat.transfer_controllers import ChatTransferController
from switchboard.db.engine import UNAVAILABLE as DATABASE_UNAVAILABLE
from switchboard.db.redis import connection_errors, redis_client
from switchboard.gateway.errors import as_gateway_error
from switchboard.keys.controllers import KeysController
from switchboard.observability.access import AccessMiddleware
from switchboard.observability.logging import configure_logging
from switchboard.resources import open_resources
from switchboard.settings import Settings, get_settings
from switchboard.usage.controllers import UsageController
from switchboard.usage.queries import totals_per_key
from switchboard.web.csrf import CSRFGuard
from switchboard.web.errors import exception_handler
from switchboard.web.forwarded import ForwardedHeaders
from switchboard.web.headers import security_headers
from switchboard.web.heap import tuned_for_serving
from switchboard.web.icons import favicon
from switchboard.web.inputs import refuse_hostile_input
from switchboard.web.request_id import add_request_id_header
from switchboard.web.templating import template_config, templates_dir

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)
API_PATH = r"^/v1(/|$)"
NO_SESSION_PATHS = [API_PATH, r"^/metrics$", r"^/healthz$", r"^/readyz$", r"^/static/",
                    r"^/favicon\.ico$"]  # fmt: skip


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
            assert isinstance(app, Switchboard)
            app.api.state.resources = resources
            log.info("switchboard ready on %s (database %s)", settings.base_url,
                     type(resources.db).__name__)  # fmt: skip
            with tuned_for_serving():
                yield

    def provide(attribute: str) -> Provide:
        def dependency(state: State) -> Any:
            return getattr(state.resources, attribute)

        return Provide(dependency, sync_to_thread=False)

    return Switchboard(
        settings,
        api=create_api(settings),
        route_handlers=[
            AccountsController,
            ChatController,
            ChatHistoryController,
            ChatTransferController,
            ProjectController,
            KeysController,
            UsageController,
            AdminController,
            BudgetsController,
            favicon,
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
            "generations": provide("generations"),
            "keys": provide("keys"),
            "usage": provide("usage"),
            "shared_state": provide("shared"),
            "budgets": provide("budgets"),
            "key_usage": Provide(lambda: totals_per_key, sync_to_thread=False),
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
        plugins=[HTMXPlugin()],  # every request is an HTMXRequest (request.htmx)
        request_max_body_size=settings.max_body_bytes,
        openapi_config=None,  # the API app publishes the API's document (/docs)
        logging_config=None,  # ours (JSON lines on stdout) is already in place
        debug=False,
    )


class Switchboard(Litestar):
    """The workspace app, and the entry point of both: API paths go to ``api`` (with its own
    wrapper), everything else through the workspace's wrappers (the real client behind
    proxies, then the access log and metrics, 404s included) to its routes."""

    def __init__(self, settings: Settings, *, api: Litestar, **config: Any) -> None:
        super().__init__(**config)
        self.api = api
        self._api = ApiEdge(api, settings)
        trusted = settings.trusted_proxy_networks
        self._workspace = ForwardedHeaders(AccessMiddleware(super().__call__), trusted)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await super().__call__(scope, receive, send)
        elif is_api_path(scope["path"]):
            await self._api(scope, receive, send)
        else:
            await self._workspace(scope, receive, send)

    @property
    def all_routes(self) -> list[BaseRoute]:
        """The workspace's routes and the API's."""
        return [*self.routes, *self.api.routes]

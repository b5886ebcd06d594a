"""The application factory: settings → resources (lifespan) → routes, DI and error handling."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

from switchboard.db.engine import AnyEngine, build_engine, close_engine, open_engine
from switchboard.db.registry import install_engine, migrate
from switchboard.gateway.routes import CompletionsController
from switchboard.gateway.service import GatewayService
from switchboard.gateway.upstream import UpstreamPool
from switchboard.health.controllers import HealthController
from switchboard.observability.logging import configure_logging
from switchboard.observability.request_id import add_request_id_header
from switchboard.settings import Settings, get_settings
from switchboard.web.errors import handle_exception
from switchboard.web.pages import PagesController
from switchboard.web.templating import template_config, templates_dir

log = logging.getLogger(__name__)


@dataclass
class Resources:
    """Long-lived things the lifespan opens and closes; handed out by dependency injection."""

    settings: Settings
    db: AnyEngine
    pool: UpstreamPool
    gateway: GatewayService


def _resources(state: State) -> Resources:
    resources: Resources = state.resources
    return resources


def create_app(
    settings: Settings | None = None, *, upstream_transport: httpx.AsyncBaseTransport | None = None
) -> Litestar:
    """Build the app. ``upstream_transport`` lets unit tests stand in for the model server."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        db = build_engine(settings.resolved_database_url)
        install_engine(db)
        await open_engine(db, settings.database_pool_size)
        await migrate()
        pool = UpstreamPool(settings, transport=upstream_transport)
        await pool.start()
        app.state.resources = Resources(settings, db, pool, GatewayService(settings, pool))
        log.info("switchboard ready on %s (database %s)", settings.base_url, type(db).__name__)
        try:
            yield
        finally:
            await pool.aclose()
            await close_engine(db)

    def provide(attribute: str) -> Provide:
        def dependency(state: State) -> Any:
            return getattr(_resources(state), attribute)

        return Provide(dependency, sync_to_thread=False)

    static_dir = templates_dir() / "static"
    return Litestar(
        route_handlers=[
            HealthController,
            CompletionsController,
            PagesController,
            create_static_files_router(path="/static", directories=[static_dir], name="static"),
        ],
        dependencies={
            "settings": Provide(lambda: settings, sync_to_thread=False),
            "db": provide("db"),
            "upstream_pool": provide("pool"),
            "gateway": provide("gateway"),
        },
        lifespan=[lifespan],
        before_send=[add_request_id_header],
        exception_handlers={Exception: handle_exception},
        template_config=template_config(),
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Switchboard",
            version="0.1.0",
            description="OpenAI-compatible gateway and workspace in front of vLLM.",
            path="/docs",
            render_plugins=[SwaggerRenderPlugin()],
        ),
        debug=False,
    )

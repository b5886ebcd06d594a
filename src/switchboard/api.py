"""The API app: ``/v1``, its OpenAPI document (``/docs``), the probes and ``/metrics``.

A Litestar app of its own, apart from the workspace: no sessions, CSRF, templates or input hooks
run on it. One wrapper (``ApiEdge``) does what every API request needs around the routes: the
real client behind trusted proxies, the request id, the security headers, the request's metrics
and access line. The workspace app (app.py) passes these paths to it before its own middleware.
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from switchboard.gateway.errors import as_gateway_error
from switchboard.gateway.messages_routes import MessagesController
from switchboard.gateway.openapi import publish_request_schemas
from switchboard.gateway.routes import CompletionsController
from switchboard.gateway.usage_routes import UsageApiController
from switchboard.health.controllers import HealthController
from switchboard.observability.access import record_request
from switchboard.observability.controllers import MetricsController
from switchboard.responses.routes import ResponsesController
from switchboard.settings import Settings
from switchboard.web.disconnect import CLIENT_CLOSED_REQUEST, ClientDisconnected
from switchboard.web.docs_ui import docs_render_plugins
from switchboard.web.errors import exception_handler
from switchboard.web.forwarded import seen_through_proxies
from switchboard.web.headers import SecurityHeaders
from switchboard.web.request_id import HEADER as REQUEST_ID_HEADER
from switchboard.web.request_id import request_id_of

API_PREFIXES = ("/v1/", "/docs")
API_PATHS = frozenset({"/v1", "/healthz", "/readyz", "/metrics"})


def is_api_path(path: str) -> bool:
    return path in API_PATHS or path.startswith(API_PREFIXES)


class ApiEdge:
    """Around the API app: one wrapper, one ``send`` of our own per request."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.trusted = tuple(settings.trusted_proxy_networks)
        self.security = SecurityHeaders(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        scope = seen_through_proxies(scope, self.trusted)
        started = time.perf_counter()
        status = 500

        async def edge_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # The API's handlers set none of the security headers: appended, not replaced.
                extra = self.security.for_path(scope["path"])
                request_id = (REQUEST_ID_HEADER, request_id_of(scope).encode())
                message["headers"] = [*message.get("headers", ()), *extra, request_id]
            await send(message)

        try:
            await self.app(scope, receive, edge_send)
        except ClientDisconnected:
            status = CLIENT_CLOSED_REQUEST  # nothing to send: the caller has gone
        finally:
            record_request(scope, status, time.perf_counter() - started)


def create_api(settings: Settings) -> Litestar:
    """The API app; its resources come from ``app.state.resources`` (set by the lifespan of the
    workspace app, which owns them)."""

    def provide(attribute: str) -> Provide:
        def dependency(state: State) -> Any:
            return getattr(state.resources, attribute)

        return Provide(dependency, sync_to_thread=False)

    api = Litestar(
        route_handlers=[
            HealthController,
            MetricsController,
            CompletionsController,
            MessagesController,
            ResponsesController,
            UsageApiController,
        ],
        dependencies={
            "settings": Provide(lambda: settings, sync_to_thread=False),
            "db": provide("db"),
            "upstream_pool": provide("pool"),
            "gateway": provide("gateway"),
            "keys": provide("keys"),
            "shared_state": provide("shared"),
        },
        exception_handlers={Exception: exception_handler(as_gateway_error, always_json=True)},
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Switchboard",
            version="0.1.0",
            description="OpenAI-compatible gateway in front of vLLM.",
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
    publish_request_schemas(api.openapi_schema, example_model=settings.default_model)
    return api

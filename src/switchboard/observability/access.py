"""One wrapper around the whole ASGI app (404s included): request metrics and the access log.

The access log line carries the request id, route, status, latency and, once known, the user and
the model (handlers put them in ``scope["state"]``); never the prompt.
"""

from __future__ import annotations

import logging
import time

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from switchboard.observability.metrics import HTTP_DURATION, HTTP_REQUESTS, labelled
from switchboard.web.disconnect import CLIENT_CLOSED_REQUEST, ClientDisconnected
from switchboard.web.request_id import request_id_of

log = logging.getLogger("switchboard.access")
QUIET_ROUTES = frozenset({"/metrics", "/healthz", "/readyz", "/static"})


def record_request(scope: Scope, status: int, elapsed: float) -> None:
    """The request's metrics and, but for the probes and static files, its access line."""
    route = scope.get("path_template") or "unmatched"
    method = scope.get("method", "GET")
    labelled(HTTP_REQUESTS, method, route, str(status)).inc()
    labelled(HTTP_DURATION, method, route).observe(elapsed)
    if (
        log.isEnabledFor(logging.INFO)
        and route.split("/{")[0] not in QUIET_ROUTES
        and not (route.startswith("/static"))
    ):
        state = scope.get("state", {})
        log.info(
            "%s %s %s",
            method,
            route,
            status,
            extra={
                "request_id": request_id_of(scope),
                "method": method,
                "route": route,
                "status": status,
                "latency_ms": round(elapsed * 1000, 1),
                "user_id": state.get("user_id"),
                "model": state.get("model"),
            },
        )


class AccessMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        except ClientDisconnected:
            status = CLIENT_CLOSED_REQUEST  # nothing to send: the caller has gone
        finally:
            record_request(scope, status, time.perf_counter() - started)

"""``GET /metrics``: not public. A bearer token from settings, or (no token set) loopback only."""

from __future__ import annotations

import secrets
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException

from switchboard.observability.metrics import exposition
from switchboard.settings import Settings

LOOPBACK = ("127.", "::1", "localhost", "testclient")


def may_scrape(request: Request[Any, Any, Any], settings: Settings) -> bool:
    if settings.metrics_token:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(
            token.strip().encode(), settings.metrics_token.encode()
        )
    host = request.client.host if request.client else ""
    return host.startswith(LOOPBACK)


class MetricsController(Controller):
    include_in_schema = False

    @get("/metrics", cache=False)
    async def metrics(
        self, request: Request[Any, Any, Any], settings: NamedDependency[Settings]
    ) -> Response[bytes]:
        if not may_scrape(request, settings):
            raise NotAuthorizedException(
                "metrics need the bearer token (SWITCHBOARD_METRICS_TOKEN)"
            )
        body, content_type = exposition(settings.workers)
        return Response(content=body, media_type=content_type)

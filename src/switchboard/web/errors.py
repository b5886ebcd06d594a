"""One exception handler for the whole app: OpenAI JSON on ``/v1``, JSON on probes, pages else.

Client mistakes keep their 4xx status and a clear message; anything unexpected becomes a 500 that
shows the request id (the logs hold the trace), never a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException
from litestar.response import Redirect, Template

from switchboard.gateway.errors import GatewayError, from_http_exception
from switchboard.observability.request_id import request_id_of

log = logging.getLogger(__name__)

TITLES = {
    400: "That request was not quite right",
    401: "Please sign in",
    403: "You do not have access to this",
    404: "Page not found",
    405: "That action is not allowed here",
    413: "That was too large",
    429: "Slow down a little",
    503: "The model is unavailable",
}


def _as_gateway_error(exc: Exception) -> GatewayError:
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, HTTPException):
        error = from_http_exception(exc.status_code, exc.detail, exc.extra)
        error.headers.update(exc.headers or {})
        return error
    return from_http_exception(500, "internal error")


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    error = _as_gateway_error(exc)
    request_id = request_id_of(request.scope)
    if error.status >= 500 and not isinstance(exc, GatewayError | HTTPException):
        log.exception("unhandled error", extra={"request_id": request_id})
    path = request.url.path
    if path.startswith(("/v1", "/healthz", "/readyz")):
        return Response(
            content=error.to_json(),
            status_code=error.status,
            media_type=MediaType.JSON,
            headers=error.headers,
        )
    if error.status == 401 and not path.startswith("/metrics"):
        # Session missing or expired: go (back) to the sign-in page, then return here.
        target = "/signin?" + urlencode({"next": request.url.path})
        if request.headers.get("hx-request") == "true":
            return Response(content=b"", status_code=401, headers={"HX-Redirect": target})
        return Redirect(target, status_code=303)
    accept = request.headers.get("accept", "")
    if "application/json" in accept and "text/html" not in accept:
        return Response(
            content=msgspec.json.encode({"detail": error.message, "request_id": request_id}),
            status_code=error.status,
            media_type=MediaType.JSON,
            headers=error.headers,
        )
    return Template(
        template_name="error.html",
        context={
            "status": error.status,
            "title": TITLES.get(error.status, "Something went wrong"),
            "message": error.message,
            "request_id": request_id,
        },
        status_code=error.status,
        headers=error.headers,
    )

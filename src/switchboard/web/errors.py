"""One exception handler for the whole app: API JSON on ``/v1`` and the probes, pages else.

Client mistakes keep their 4xx status and a clear message; anything unexpected becomes a 500 that
shows the request id (the logs hold the trace), never a stack trace. The API's error shape
belongs to the gateway: the app passes its mapper in (``exception_handler(as_api_error)``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol, cast
from urllib.parse import urlencode

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException
from litestar.plugins.htmx import HTMXTemplate
from litestar.response import Redirect, Template

from switchboard.web.htmx import htmx_of, wants_fragment
from switchboard.web.request_id import request_id_of

log = logging.getLogger(__name__)
JSON_PATHS = ("/v1", "/healthz", "/readyz")
TOAST = "_toast.html"
TOAST_TARGET = "#toast"
"""Where an htmx request's error goes: the page's notification region (base.html)."""

TITLES = {
    400: "That request was not quite right",
    401: "Please sign in",
    403: "You do not have access to this",
    404: "Page not found",
    405: "That action is not allowed here",
    413: "That was too large",
    429: "Slow down a little",
    503: "Temporarily unavailable",
}


class ApiError(Protocol):
    """What an error shows: its status, a message for people, headers, and the API's JSON."""

    @property
    def status(self) -> int: ...
    @property
    def message(self) -> str: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    def to_json(self) -> bytes: ...


ExceptionHandler = Callable[[Request[Any, Any, Any], Exception], Response[Any]]


def exception_handler(
    as_api_error: Callable[[Exception], ApiError], *, always_json: bool = False
) -> ExceptionHandler:
    """The app's handler: ``as_api_error`` turns any exception into the API's error, answered
    as the API's JSON on the API's paths (``always_json``: on every path, the API app)."""

    def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        error = as_api_error(exc)
        # an HTTPException is deliberate unless it is a 500 (Litestar's own, when wiring fails)
        raised = isinstance(exc, HTTPException) and exc.status_code < 500
        deliberate = cast(object, error) is exc or raised
        request_id = request_id_of(request.scope)
        if error.status == 500 and not deliberate:
            log.exception("unhandled error", extra={"request_id": request_id})
        elif error.status > 500 and not deliberate:  # an outage the mapper recognised: no trace
            reason = f"{type(exc).__name__}: {exc}"[:200]
            log.warning("dependency unavailable", extra={"request_id": request_id, "error": reason})
        if always_json or request.url.path.startswith(JSON_PATHS):
            return Response(
                content=error.to_json(),
                status_code=error.status,
                media_type=MediaType.JSON,
                headers=dict(error.headers),
            )
        return error_page(request, error.status, error.message, error.headers)

    return handle_exception


def error_page(
    request: Request[Any, Any, Any],
    status: int,
    message: str,
    headers: Mapping[str, str] | None = None,
    *,
    title: str | None = None,
) -> Response[Any]:
    """The workspace's answer to an error: back to sign-in on 401; for htmx, a toast in place
    (same status); JSON for a JSON client; else the error page. Each with the request id
    (``title``: the status's usual title)."""
    path = request.url.path
    headers = dict(headers or {})
    request_id = request_id_of(request.scope)
    if status == 401 and not path.startswith("/metrics"):
        # Session missing or expired: go (back) to the sign-in page, then return here.
        target = "/signin?" + urlencode({"next": path})
        if htmx_of(request):
            return Response(content=b"", status_code=401, headers={"HX-Redirect": target})
        return Redirect(target, status_code=303)
    context = {
        "status": status,
        "title": title or TITLES.get(status, "Something went wrong"),
        "message": message,
        "request_id": request_id,
    }
    if wants_fragment(request):
        # in place, as a toast; htmx swaps no error response unless told (switchboard.js)
        return HTMXTemplate(
            template_name=TOAST,
            context=context,
            status_code=status,
            headers=headers,
            re_target=TOAST_TARGET,
            re_swap="innerHTML",
        )
    accept = request.headers.get("accept", "")
    if "application/json" in accept and "text/html" not in accept:
        return Response(
            content=msgspec.json.encode({"detail": message, "request_id": request_id}),
            status_code=status,
            media_type=MediaType.JSON,
            headers=headers,
        )
    return Template(
        template_name="error.html", context=context, status_code=status, headers=headers
    )

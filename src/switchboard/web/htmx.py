"""What htmx said about a request, through Litestar's HTMX plugin (``HTMXRequest``)."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.plugins.htmx import HTMXDetails, HTMXRequest


def htmx_of(request: Request[Any, Any, Any]) -> HTMXDetails:
    """``request.htmx`` (the plugin makes every request an ``HTMXRequest``); the same details
    for a plain ``Request`` (one built by a middleware before the app's request class)."""
    return request.htmx if isinstance(request, HTMXRequest) else HTMXDetails(request)


def wants_fragment(request: Request[Any, Any, Any]) -> bool:
    """htmx asked for part of a page (a boosted request wants the whole page)."""
    details = htmx_of(request)
    return bool(details) and not details.boosted

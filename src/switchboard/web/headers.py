"""Security headers on every response: pages, fragments, JSON, errors, static files, 404s.

A ``before_send`` hook (like the request id): Litestar runs it for every response it sends,
routed or not, error or not. The policy allows the app's own scripts, styles and connections
only: no inline script, ``on*=`` handler or ``style=`` attribute anywhere, and htmx runs with
``allowEval`` off (``templates/base.html``), so an injected attribute cannot run code.

The OpenAPI UI (outside production, web/docs_ui.py) also allows style attributes and ``data:``
images.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from litestar.types import Message, Scope

from switchboard.settings import Settings

CSP = (
    "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'"
)
HSTS = "max-age=31536000; includeSubDomains"
DOCS_PATH = "/docs"
DOCS_UI_PATHS = frozenset({DOCS_PATH, f"{DOCS_PATH}/swagger"})
"""The Swagger UI's HTML pages (``/docs/openapi.json`` is not one of them)."""
DOCS_UI_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'"
)
"""The vendored Swagger UI (web/docs_ui.py) runs the app's own scripts only, as every page;
its React views set ``style`` attributes and its stylesheet draws icons from ``data:`` URLs."""


def _encoded(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode(), value.encode()) for name, value in headers.items()]


class SecurityHeaders:
    """The headers every response carries. HSTS only in production (where the app is behind
    HTTPS); each header replaces any value a handler may have set."""

    def __init__(self, settings: Settings) -> None:
        production = settings.environment == "production"
        common = {
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "X-Frame-Options": "DENY",
        }
        if production:
            common["Strict-Transport-Security"] = HSTS
        self.strict = _encoded({"Content-Security-Policy": CSP, **common})
        self.docs_ui = _encoded({"Content-Security-Policy": DOCS_UI_CSP, **common})
        self.names = frozenset(name for name, _ in self.strict)
        self.relaxed_paths = frozenset() if production else DOCS_UI_PATHS

    def for_path(self, path: str) -> list[tuple[bytes, bytes]]:
        return self.docs_ui if path in self.relaxed_paths else self.strict

    def added_to(
        self, headers: Iterable[tuple[bytes, bytes]], path: str
    ) -> list[tuple[bytes, bytes]]:
        names = self.names
        kept = [(k, v) for k, v in headers if k.lower() not in names]
        return [*kept, *(self.docs_ui if path in self.relaxed_paths else self.strict)]

    async def hook(self, message: Message, scope: Scope) -> None:
        """For ``Litestar(before_send=...)``."""
        if message["type"] == "http.response.start":
            message["headers"] = self.added_to(message.get("headers", ()), scope["path"])


def security_headers(settings: Settings) -> Callable[[Message, Scope], Awaitable[None]]:
    """The ``before_send`` hook that adds the security headers."""
    return SecurityHeaders(settings).hook

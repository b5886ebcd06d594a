"""The OpenAPI UI on ``/docs``: Swagger UI from the vendored copy in ``templates/static/vendor``
(fetched from npm by its ``update.sh``), so it works offline and runs no third party's code.

Litestar's own Swagger page loads its files from a CDN and starts with an inline script holding
the whole schema; this page loads the bundle, its stylesheet and ``/static/docs.js`` from the
app, and the schema from ``/docs/openapi.json``: its CSP allows the app's own scripts only
(``headers.DOCS_UI_CSP``). Production serves no UI (the JSON document answers ``/docs``).
"""

from __future__ import annotations

from html import escape
from typing import Any

from litestar import Request, Router
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin

from switchboard.settings import Settings

SWAGGER_UI = "/static/vendor/swagger-ui-5.36.0"
ICONS = (
    '<link rel="icon" href="/favicon.ico" sizes="32x32">'
    '<link rel="icon" href="/static/icons/icon.svg" type="image/svg+xml">'
)


class VendoredSwaggerPlugin(OpenAPIRenderPlugin):
    """Swagger UI at ``/docs`` and ``/docs/swagger``, with no CDN and no inline script."""

    def __init__(self) -> None:
        super().__init__(path="/swagger", favicon=ICONS, style="")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = escape(str(openapi_schema["info"]["title"]))
        spec = escape(self.get_openapi_json_route(request))
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{title} API</title>{self.favicon}"
            f'<link rel="stylesheet" href="{SWAGGER_UI}/swagger-ui.css">'
            f'<script src="{SWAGGER_UI}/swagger-ui-bundle.js" defer></script>'
            '<script src="/static/docs.js" defer></script>'
            f'</head><body><main id="swagger-ui" data-spec="{spec}"></main></body></html>'
        ).encode()

    def receive_router(self, router: Router) -> None:
        """No ``oauth2-redirect.html``: the API's one scheme is a bearer key, no OAuth flow."""
        return


def docs_render_plugins(settings: Settings) -> list[OpenAPIRenderPlugin]:
    """``/docs/openapi.json`` everywhere (clients and Schemathesis read it); the Swagger UI only
    outside production, where ``/docs`` answers the JSON document itself. The vendored files
    weigh 2 MB and are served in every environment (as static files, never run in production)."""
    if settings.environment == "production":
        return [JsonRenderPlugin()]
    return [VendoredSwaggerPlugin()]

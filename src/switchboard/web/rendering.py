"""Pages and fragments from the same template blocks (jinja2-fragments): the whole page on
normal navigation, only the ``content`` block when htmx asks (``HX-Request``)."""

from __future__ import annotations

from typing import Any

from jinja2_fragments.litestar import HTMXBlockTemplate
from litestar import Request
from litestar.response import Template

from switchboard.web.htmx import wants_fragment


def page(
    request: Request[Any, Any, Any],
    template: str,
    context: dict[str, Any],
    *,
    block: str = "content",
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Template:
    if wants_fragment(request):
        return HTMXBlockTemplate(
            template_name=template,
            block_name=block,
            context=context,
            status_code=status_code,
            headers=headers,
        )
    return Template(
        template_name=template, context=context, status_code=status_code, headers=headers
    )


async def render_block(
    request: Request[Any, Any, Any], template: str, block: str, **context: Any
) -> str:
    """One block of a template as a string (for SSE payloads)."""
    from jinja2_fragments import render_block as render

    environment = request.app.template_engine.engine  # type: ignore[union-attr]
    return str(render(environment, template, block, request=request, **context))

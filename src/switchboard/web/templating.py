"""Where the Jinja templates live and how the app renders them."""

from __future__ import annotations

from pathlib import Path

from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from switchboard.web.csrf import register_template_callables

_PACKAGE = Path(__file__).resolve().parents[1]


def templates_dir() -> Path:
    """``switchboard/templates`` in an installed wheel, else the repository's ``templates/``."""
    bundled = _PACKAGE / "templates"
    return bundled if bundled.is_dir() else _PACKAGE.parents[1] / "templates"


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(
        directory=templates_dir(),
        engine=JinjaTemplateEngine,
        engine_callback=register_template_callables,
    )

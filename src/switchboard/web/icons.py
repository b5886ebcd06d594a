"""``/favicon.ico``: browsers and tools ask for it at the root whatever the page links, so it is
served (from ``templates/static/icons``, drawn by tools/make_icons.py) rather than a 404 on
every page. The other icons and the web app manifest are plain static files."""

from __future__ import annotations

from litestar import get
from litestar.response import File

from switchboard.web.templating import templates_dir

ICONS_DIR = templates_dir() / "static" / "icons"


@get("/favicon.ico", include_in_schema=False, sync_to_thread=False, cache=False)
def favicon() -> File:
    return File(
        ICONS_DIR / "favicon.ico",
        media_type="image/x-icon",
        content_disposition_type="inline",
        headers={"Cache-Control": "public, max-age=86400"},
    )

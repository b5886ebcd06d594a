"""Everything a page needs comes from the app itself (issue 21 item 8, issue 26): the Swagger UI on
/docs from vendored files, the favicon (also at /favicon.ico, which browsers ask for) and the web
app manifest's icons from the static files. Offline, nothing is blank and nothing is a 404."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from switchboard.app import create_app
from tests.conftest import SettingsFactory
from tests.support.fake_upstream import FakeUpstream


class Links(HTMLParser):
    """Every URL a page loads by itself: scripts, stylesheets, icons, the manifest, images."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self.rels: dict[str, list[str]] = {}
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            if found.get("src"):
                self.urls.append(str(found["src"]))
            else:
                self.inline_scripts += 1
        if tag == "link" and found.get("href"):
            self.urls.append(str(found["href"]))
            for rel in str(found.get("rel", "")).split():
                self.rels.setdefault(rel, []).append(str(found["href"]))
        if tag == "img" and found.get("src"):
            self.urls.append(str(found["src"]))


def links(html: str) -> Links:
    parser = Links()
    parser.feed(html)
    return parser


async def assert_all_served(client: AsyncTestClient[Any], urls: list[str]) -> None:
    """Each URL is the app's own (a path, no host) and is served 200."""
    for url in urls:
        assert url.startswith("/"), f"{url} is not the app's"
        assert not url.startswith("//"), f"{url} is not the app's"
        response = await client.get(url)
        assert response.status_code == 200, url


async def test_the_docs_page_loads_the_vendored_swagger_ui_and_nothing_from_elsewhere(
    client: AsyncTestClient[Any],
) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    found = links(page.text)
    assert "cdn" not in page.text.lower()
    assert "https://" not in page.text
    assert any(url.endswith("swagger-ui-bundle.js") for url in found.urls), found.urls
    assert any(url.endswith("swagger-ui.css") for url in found.urls), found.urls
    assert found.rels.get("icon"), "the docs page links the favicon"
    await assert_all_served(client, found.urls)
    assert found.inline_scripts == 0  # the schema comes from /docs/openapi.json
    csp = page.headers["content-security-policy"]
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
    assert script_src.split() == ["script-src", "'self'"], csp
    assert "http" not in csp  # no foreign host
    assert (await client.get("/docs/openapi.json")).json()["openapi"].startswith("3.")


async def test_favicon_ico_is_served(client: AsyncTestClient[Any]) -> None:
    response = await client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.headers["content-type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    assert response.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert "set-cookie" not in response.headers  # no session for a static file


@pytest.mark.parametrize("path", ["/signin", "/no/such/page"])
async def test_every_page_links_its_icons_and_manifest_and_they_are_served(
    make_settings: SettingsFactory, fake_upstream: FakeUpstream, path: str
) -> None:
    app = create_app(make_settings(), upstream_transport=fake_upstream.transport())
    async with AsyncTestClient(app=app) as client:
        page = await client.get(path)
        found = links(page.text)
        assert found.rels.get("icon"), path
        assert found.rels.get("apple-touch-icon"), path
        [manifest_url] = found.rels["manifest"]
        await assert_all_served(client, found.urls)
        manifest = (await client.get(manifest_url)).json()
        assert manifest["name"] == "Switchboard"
        sizes = {icon["sizes"] for icon in manifest["icons"]}
        assert {"192x192", "512x512"} <= sizes
        await assert_all_served(client, [icon["src"] for icon in manifest["icons"]])
        assert any(icon.get("purpose") == "maskable" for icon in manifest["icons"])
        assert json.dumps(manifest).count("http") == 0  # relative to the app, wherever it is

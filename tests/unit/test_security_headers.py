"""Security headers on every response the app sends, pages that work under that CSP (no inline
script, event handler or style attribute), and /docs without its UI in production."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from switchboard.accounts.services import create_user
from switchboard.app import Switchboard, create_app
from switchboard.chat.markdown import render_markdown
from switchboard.chat.tables import Message
from switchboard.keys.tables import ApiKey
from switchboard.usage.chart import bar_chart
from tests.conftest import REPO_ROOT, SettingsFactory, WebFactory, mint_key_in
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer

CSP = (
    "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'"
)
EXPECTED = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}
DOCS_UI = frozenset({"/docs", "/docs/swagger", "/docs/oauth2-redirect.html"})
"""The Swagger UI pages (outside production only): style attributes and data: images."""
PRODUCTION = {"environment": "production", "secret_key": "k" * 64, "metrics_token": "m" * 32,
              "public_url": "https://switchboard.example"}  # fmt: skip
PASSWORD = "a test password"  # pragma: allowlist secret
PARAMETER = re.compile(r"\{(\w+):\w+\}")


def assert_secure(response: httpx.Response, *, production: bool = False) -> None:
    """Each header exactly once with exactly this value; HSTS only in production."""
    where = f"{response.request.method} {response.request.url.path} ({response.status_code})"
    path = response.request.url.path
    for name, value in EXPECTED.items():
        if name == "content-security-policy" and path in DOCS_UI and not production:
            [docs_csp] = response.headers.get_list(name)
            assert "frame-ancestors 'none'" in docs_csp, where
            assert "object-src 'none'" in docs_csp, where
            continue
        assert response.headers.get_list(name) == [value], where
    if production:
        assert response.headers.get_list("strict-transport-security") == [
            "max-age=31536000; includeSubDomains"
        ], where
    else:
        assert "strict-transport-security" not in response.headers, where


class InlineCode(HTMLParser):
    """Collects what the CSP (or htmx without eval) would refuse: inline scripts and styles,
    ``on*=`` handlers, ``style=`` attributes, ``javascript:`` URLs and htmx's eval features."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            self._in_script = True
            if not found.get("src"):
                self.problems.append("<script> without src")
        if tag == "style":
            self.problems.append("<style> element")
        for name, value in attrs:
            bare = name.removeprefix("data-")
            if name.startswith("on") or bare.startswith(("hx-on", "hx-vars")):
                self.problems.append(f"<{tag} {name}=...>")
            elif name == "style":
                self.problems.append(f"<{tag} style=...>")
            elif (value or "").strip().lower().startswith(("javascript:", "js:")):
                self.problems.append(f"<{tag} {name}={value!r}>")
            elif bare == "hx-trigger" and "[" in (value or ""):
                self.problems.append(f"<{tag} hx-trigger filter (needs eval): {value!r}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self._in_script = False

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.problems.append(f"inline script body: {data.strip()[:60]!r}")


def inline_code(html: str) -> list[str]:
    parser = InlineCode()
    parser.feed(html)
    parser.close()
    return parser.problems


def test_the_inline_code_check_sees_what_it_must() -> None:
    """The parser the other tests rely on finds each kind of inline code."""
    bad = (
        '<script>alert(1)</script><script src="/static/x.js"></script><style>p{}</style>'
        '<p style="color:red" onclick="x()"><form hx-on::after-request="x"></form>'
        '<a href="javascript:x()">a</a><div hx-trigger="keyup[ctrlKey]"></div>'
        '<svg><rect onload="x()" /></svg>'
    )
    assert len(inline_code(bad)) == 9
    assert inline_code('<script src="/static/a.js" defer></script><p class="x">ok</p>') == []


def test_no_template_has_inline_script_handlers_or_style() -> None:
    templates = sorted((REPO_ROOT / "templates").rglob("*.html"))
    assert len(templates) >= 8
    for template in templates:
        source = template.read_text()
        without_jinja = re.sub(r"\{%.*?%\}|\{\{.*?\}\}|\{#.*?#\}", "", source, flags=re.DOTALL)
        assert inline_code(without_jinja) == [], template.relative_to(REPO_ROOT)


def test_html_built_in_python_has_no_inline_code() -> None:
    import datetime as dt

    chart = bar_chart([(dt.date(2026, 1, 1), 3), (dt.date(2026, 1, 2), 5)], "tokens")
    assert inline_code(chart) == []
    hostile = '<img src=x onerror="alert(1)"> <span style="x">hi</span> [a](javascript:alert(1))'
    assert inline_code(render_markdown(hostile)) == []


def test_htmx_runs_without_eval_and_without_injected_styles() -> None:
    base = (REPO_ROOT / "templates/base.html").read_text()
    [content] = re.findall(r"<meta name=\"htmx-config\" content='([^']*)'>", base)
    config = json.loads(content)
    assert config["allowEval"] is False
    assert config["includeIndicatorStyles"] is False
    css = (REPO_ROOT / "templates/static/switchboard.css").read_text()
    assert ".htmx-indicator" in css  # what htmx would have injected as an inline <style>
    script = (REPO_ROOT / "templates/static/switchboard.js").read_text()
    assert "htmx:afterRequest" in script  # the composer's reset, formerly an inline hx-on


def _fill(path: str, values: dict[str, Any]) -> str:
    """A route's path with its parameters filled with real ids (KeyError for a new one)."""
    return PARAMETER.sub(lambda match: str(values[match.group(1)]), path)


def _ids(live: LiveServer, conversation: int) -> dict[str, Any]:
    async def lookup() -> dict[str, Any]:
        message = (
            await Message.select(Message.id)
            .where((Message.conversation == conversation) & (Message.role == "assistant"))
            .first()
        )
        key = await ApiKey.select(ApiKey.id, ApiKey.user).first()
        assert message is not None
        assert key is not None
        return {"message_id": message["id"], "key_id": key["id"], "user_id": key["user"]}

    return live.run(lookup())


def test_every_route_sends_the_security_headers(live_fake: LiveServer, web: WebFactory) -> None:
    """Every route the app registers (pages, htmx fragments, JSON, SSE, static files, the
    OpenAPI routes), each GET plain and as htmx, each POST as htmx; every HTML page checked for
    inline code. Parametrised routes get real ids."""
    live_fake.run(create_user("root", password=PASSWORD, role="admin"))
    live_fake.run(mint_key_in(live_fake.app, "root"))
    session = web(live_fake.url)
    assert session.sign_in("root", PASSWORD).status_code == 303
    conversation = session.new_conversation()
    sent = session.post(f"/chat/{conversation}/messages", {"content": "hello there"})
    assert sent.status_code == 303  # without htmx the reply is generated right away
    made = session.post("/chat/projects", {"name": "Walk", "instructions": ""})
    assert made.status_code == 303, made.text
    project = int(made.headers["location"].rsplit("/", 1)[1])
    values = {**_ids(live_fake, conversation), "conversation_id": conversation,
              "project_id": project,
              "model_id": "fake-model", "response_id": "resp_0123456789abcdef",
              "file_path": "switchboard.css",
              "path": "nowhere"}  # fmt: skip

    calls: list[tuple[str, str]] = []
    app = live_fake.app
    assert isinstance(app, Switchboard)
    for route in app.all_routes:
        assert isinstance(route, HTTPRoute), route.path
        for handler in route.route_handlers:
            for verb in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                calls.append((verb, _fill(route.path, values)))
    # the sign-out and the deletion last: the walk needs the session and the conversation
    calls.sort(key=lambda call: (call[1] == "/signout", call[1].endswith("/delete")))
    assert len(calls) >= 35
    pages: dict[str, int] = {}
    for method, path in calls:
        if method == "GET":
            responses = [session.get(path), session.get(path, htmx=True)]
        elif method == "POST":
            responses = [session.post(path, htmx=True)]
        else:
            token = {"x-csrftoken": session.csrf()}
            responses = [session.http.request(method, path, headers=token)]
        for response in responses:
            assert_secure(response)
            is_html = response.headers.get("content-type", "").startswith("text/html")
            if is_html and path not in DOCS_UI:
                assert inline_code(response.text) == [], f"{method} {path}"
                pages[f"{method} {path}"] = response.status_code
    # the walk was signed in: it saw the real pages, not only redirects to the sign-in page
    for path in ("/chat", f"/chat/{conversation}", "/keys", "/usage", "/admin/users", "/chat/list"):
        assert pages[f"GET {path}"] == 200, path
    assert session.get("/chat").status_code == 303  # the walk's last POST signed out


def test_errors_static_files_and_unrouted_paths_send_them(
    live_fake: LiveServer, web: WebFactory
) -> None:
    session = web(live_fake.url)
    not_found = session.get("/no/such/page")
    assert not_found.status_code == 404
    assert not_found.headers["content-type"].startswith("text/html")
    assert_secure(not_found)
    api_error = session.http.post("/v1/chat/completions", json={"model": "fake-model"})
    assert api_error.status_code == 401
    assert api_error.json()["error"]["type"]
    assert_secure(api_error)
    for asset in ("switchboard.css", "switchboard.js", "vendor/htmx-2.0.11.min.js"):
        static = session.get(f"/static/{asset}")
        assert static.status_code == 200
        assert_secure(static)
    assert_secure(session.get("/static/missing.css"))
    refused = session.http.post("/signin", data={"username": "x"})  # no CSRF token
    assert refused.status_code == 403
    assert_secure(refused)
    wrong_method = session.http.delete("/chat")
    assert wrong_method.status_code == 405
    assert_secure(wrong_method)


async def test_production_adds_hsts_and_serves_the_schema_without_the_ui(
    make_settings: SettingsFactory, fake_upstream: FakeUpstream
) -> None:
    app = create_app(make_settings(**PRODUCTION), upstream_transport=fake_upstream.transport())
    async with AsyncTestClient(app=app) as client:
        schema = await client.get("/docs/openapi.json")
        assert schema.status_code == 200
        assert schema.json()["paths"]["/v1/chat/completions"]
        assert_secure(schema, production=True)
        for path in DOCS_UI:  # no UI: the schema itself at /docs, a plain 404 for the rest
            response = await client.get(path)
            assert "swagger" not in response.text.lower(), path
            assert response.status_code == (200 if path == "/docs" else 404), path
            assert_secure(response, production=True)
        assert (await client.get("/docs")).json()["openapi"].startswith("3.")
        for path in ("/healthz", "/signin", "/no/such/page", "/static/switchboard.css"):
            assert_secure(await client.get(path), production=True)


async def test_the_swagger_ui_outside_production_gets_only_what_it_needs(
    client: AsyncTestClient[Any],
) -> None:
    """The UI is the vendored Swagger UI started by the app's own script (test_offline_assets.py):
    its page (and only it) allows style attributes and data: images, still refusing inline and
    foreign scripts, frames, plugins and foreign form targets."""
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "swagger-ui-bundle.js" in page.text
    assert inline_code(page.text) == []
    docs_csp = page.headers["content-security-policy"]
    for directive in ("default-src 'self'", "frame-ancestors 'none'", "object-src 'none'",
                      "base-uri 'self'", "form-action 'self'", "script-src 'self';",
                      "img-src 'self' data:;"):  # fmt: skip
        assert directive in docs_csp
    schema = await client.get("/docs/openapi.json")
    assert schema.headers["content-security-policy"] == CSP


def test_the_headers_module_imports_no_feature_package() -> None:
    """web/ stays below the feature packages: headers.py imports none of them."""
    source = Path(REPO_ROOT / "src/switchboard/web/headers.py").read_text()
    imported = set(re.findall(r"^from switchboard\.(\w+)", source, flags=re.MULTILINE))
    assert imported <= {"settings", "web"}

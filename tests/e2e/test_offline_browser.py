"""The app works with no network but its own (issue 21 item 8, issue 26): /docs shows the vendored
Swagger UI with every request to another host refused, and no page gets a 404 for its favicon
(or anything else it loads), signed in or not."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Response, Route, expect

from tests.e2e.conftest import screenshot
from tests.e2e.support import FakeStack, fake_stack, new_context, sign_in

PAGES = ["/chat", "/keys", "/usage", "/admin/users", "/admin/budgets", "/account/password"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeStack]:
    yield from fake_stack(tmp_path_factory.mktemp("offline"))


class Traffic:
    """What a page asked for: requests to other hosts (refused, as offline), failed requests,
    answers of 400 or more, and console errors."""

    def __init__(self, page: Page, origin: str) -> None:
        self.origin = origin
        self.foreign: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.console: list[str] = []
        self.seen: list[str] = []
        page.route("**/*", self.route)
        page.on("requestfailed", self.request_failed)
        page.on("response", self.response)
        page.on("request", self.request)
        page.on("console", self.console_message)

    def console_message(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console.append(message.text)

    def route(self, route: Route) -> None:
        url = route.request.url
        if url.startswith((self.origin, "data:")):
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort("internetdisconnected")

    def request(self, request: Request) -> None:
        self.seen.append(request.url)

    def request_failed(self, request: Request) -> None:
        # the next page.goto cancels what the last page still loads (its icon): not a failure
        if request.failure != "net::ERR_ABORTED":
            self.failed.append(f"{request.url} ({request.failure})")

    def response(self, response: Response) -> None:
        if response.status >= 400:
            self.errors.append(f"{response.status} {response.url}")

    def assert_clean(self, where: str) -> None:
        assert self.foreign == [], f"{where} asked another host for {self.foreign}"
        assert self.failed == [], f"{where}: failed requests {self.failed}"
        assert self.errors == [], f"{where}: {self.errors}"
        assert self.console == [], f"{where}: console errors {self.console}"


def test_the_docs_show_the_swagger_ui_offline(browser: Browser, stack: FakeStack) -> None:
    context = new_context(browser)
    page = context.new_page()
    traffic = Traffic(page, stack.url)
    page.goto(f"{stack.url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Switchboard")
    chat = page.locator(".opblock-summary-path", has_text=re.compile(r"^/v1/chat/completions$"))
    expect(chat.first).to_be_visible()
    chat.first.click()  # an operation opens, with its request body's schema
    expect(page.get_by_role("button", name="Try it out").first).to_be_visible()
    screenshot(page, "docs")
    traffic.assert_clean("/docs")
    assert any("swagger-ui-bundle.js" in url for url in traffic.seen), traffic.seen
    context.close()


def icons_of(page: Page) -> list[str]:
    hrefs: list[str] = page.eval_on_selector_all(
        "link[rel~=icon], link[rel=apple-touch-icon], link[rel=manifest]",
        "(links) => links.map((l) => l.href)",
    )
    return hrefs


def assert_icons_served(page: Page, where: str) -> None:
    hrefs = icons_of(page)
    assert len(hrefs) >= 3, f"{where} links {hrefs}"
    for href in [*hrefs, f"{page.url.split('/', 3)[0]}//{page.url.split('/', 3)[2]}/favicon.ico"]:
        response = page.request.get(href)
        assert response.status == 200, f"{where}: {href} answered {response.status}"


def test_no_page_gets_a_404_for_its_favicon_or_anything_else(
    browser: Browser, stack: FakeStack
) -> None:
    context = new_context(browser)
    page = context.new_page()
    traffic = Traffic(page, stack.url)
    page.goto(f"{stack.url}/signin")
    assert_icons_served(page, "/signin")
    sign_in(page, stack.url, "root")
    for path in PAGES:
        response = page.goto(f"{stack.url}{path}")
        assert response is not None
        assert response.status == 200, path
        expect(page.locator("h1")).to_be_visible()
        assert_icons_served(page, path)
    traffic.assert_clean("the workspace")
    assert any("/static/icons/" in url for url in traffic.seen), "Chromium asked for no icon"
    context.close()

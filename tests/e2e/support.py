"""Helpers shared by the browser tests against the fake model: the app started once per module in
front of a ``MarkdownUpstream`` (what these tests check is the page, not the model), signing in,
and moving the focus with the keyboard alone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect

from switchboard.accounts.services import create_user
from switchboard.app import create_app
from switchboard.settings import load_settings
from tests.e2e.conftest import WAIT_MS
from tests.support.live import LiveServer
from tests.support.markdown_upstream import MarkdownUpstream

PASSWORD = "browser password 12"  # pragma: allowlist secret
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}


@dataclass
class FakeStack:
    server: LiveServer
    upstream: MarkdownUpstream

    @property
    def url(self) -> str:
        return self.server.url


def fake_stack(data_dir: Path, **overrides: Any) -> Iterator[FakeStack]:
    """The app on a socket in front of the fake model, with an admin ``root`` and a member
    ``eve`` (a generator for a module-scoped fixture)."""
    upstream = MarkdownUpstream(models=("fake-model", "other-model"))
    env = {
        "SWITCHBOARD_ENVIRONMENT": "test",
        "SWITCHBOARD_DATA_DIR": str(data_dir),
        "SWITCHBOARD_UPSTREAM_URLS": "http://upstream.test/v1",
        "SWITCHBOARD_UPSTREAM_HEALTH_INTERVAL": "0.5",
        "SWITCHBOARD_DEFAULT_MODEL": "fake-model",
        "SWITCHBOARD_CHAT_TITLES": "false",  # what these tests count is the chat's own requests
    }
    env.update({f"SWITCHBOARD_{k.upper()}": str(v) for k, v in overrides.items()})
    settings = load_settings(env, dotenv=data_dir / "absent.env")
    server = LiveServer(create_app(settings, upstream_transport=upstream.transport())).start()
    try:
        server.run(create_user("root", password=PASSWORD, role="admin"))
        server.run(create_user("eve", password=PASSWORD))
        yield FakeStack(server, upstream)
    finally:
        server.stop()


def new_context(browser: Browser, **options: Any) -> BrowserContext:
    context = browser.new_context(**{"viewport": DESKTOP, **options})
    context.set_default_timeout(WAIT_MS)
    return context


def sign_in(page: Page, url: str, username: str) -> None:
    page.goto(f"{url}/signin")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/chat$"))


def new_chat(page: Page) -> None:
    """The message box of a new conversation (stored with its first message)."""
    page.get_by_role("link", name="+ New chat").first.click()
    expect(page).to_have_url(re.compile(r"/chat/?$"))


def send(page: Page, text: str) -> None:
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send").click()


def tab_to(page: Page, matches: str, *, limit: int = 60, backwards: bool = False) -> None:
    """Press Tab (or Shift+Tab) until the focused element matches the CSS selector ``matches``."""
    key = "Shift+Tab" if backwards else "Tab"
    for _ in range(limit):
        page.keyboard.press(key)
        if page.evaluate("(s) => document.activeElement?.matches(s) ?? false", matches):
            return
    focused = page.evaluate("document.activeElement?.outerHTML.slice(0, 200)")
    raise AssertionError(f"{limit} x {key} never reached {matches!r} (focus on {focused})")


FOCUS_RING = """() => {
    const el = document.activeElement;
    const style = getComputedStyle(el);
    return el.matches(":focus-visible") && style.outlineStyle !== "none"
        && parseFloat(style.outlineWidth) >= 2;
}"""
"""The focused element shows a focus ring (the keyboard put it there)."""

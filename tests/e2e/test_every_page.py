"""Every page of the workspace (issue 13, items 9 and 10), at phone and desktop width, light and
dark: axe-core finds no serious or critical violation, nothing is wider than a phone, the dark
scheme is a real one, and a screenshot of each lands in test-artifacts/screenshots/.

The pages come from the routes in src/switchboard/*/controllers.py (and accounts/admin.py); the
chat's other states (streaming, errors, search results, an import report) are checked where they
are produced (test_keyboard.py, test_errors_browser.py, test_history_browser.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.a11y import check_every_variant
from tests.e2e.support import FakeStack, fake_stack, new_chat, new_context, send, sign_in

CODE_ANSWER = (
    "Here is a function:\n\n```python\ndef add(a, b):\n    # the sum\n    return a + b\n```\n\n"
    "It adds **two** numbers. See [the docs](https://docs.python.org/) and `add(1, 2)`:\n\n"
    "- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
)
SIGNED_IN = [
    ("chat-empty", "/chat"),
    ("keys", "/keys"),
    ("usage", "/usage"),
    ("admin-users", "/admin/users"),
    ("admin-budgets", "/admin/budgets"),
    ("password", "/account/password"),
    ("not-found", "/no/such/page"),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeStack]:
    yield from fake_stack(tmp_path_factory.mktemp("every-page"))


@pytest.fixture(scope="module")
def admin(browser: Browser, stack: FakeStack) -> Iterator[Page]:
    """An administrator's page, after one answer (so usage has rows) and one key."""
    context: BrowserContext = new_context(browser)
    page = context.new_page()
    sign_in(page, stack.url, "root")
    page.goto(f"{stack.url}/keys")
    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#new-key")).to_contain_text("sk-sb-")
    page.goto(f"{stack.url}/chat")
    new_chat(page)
    send(page, CODE_ANSWER)
    expect(page.locator(".message.assistant.complete")).to_be_visible()
    yield page
    context.close()


def test_sign_in_page(browser: Browser, stack: FakeStack) -> None:
    context = new_context(browser)
    page = context.new_page()
    page.goto(f"{stack.url}/chat")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    check_every_variant(page, "signin")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert").filter(has_text="do not match")).to_be_visible()
    check_every_variant(page, "signin-error")
    context.close()


def test_a_conversation_with_a_finished_answer(admin: Page) -> None:
    answer = admin.locator(".message.assistant.complete")
    expect(answer.locator("pre .hl-k").first).to_be_visible()  # highlighted code
    expect(answer.locator("table")).to_be_visible()
    check_every_variant(admin, "chat-conversation")


def test_a_conversation_with_its_settings_and_edit_form_open(admin: Page) -> None:
    admin.get_by_text("Settings and export").click()
    admin.get_by_text("Edit last message").click()
    expect(admin.get_by_label("System prompt")).to_be_visible()
    expect(admin.get_by_label("Edited message")).to_be_visible()
    check_every_variant(admin, "chat-settings")
    admin.reload()


@pytest.mark.parametrize(("name", "path"), SIGNED_IN, ids=[name for name, _ in SIGNED_IN])
def test_signed_in_page(admin: Page, stack: FakeStack, name: str, path: str) -> None:
    response = admin.goto(f"{stack.url}{path}")
    assert response is not None
    expected: dict[str, Any] = {"not-found": 404}
    assert response.status == expected.get(name, 200)
    expect(admin.locator("h1")).to_be_visible()
    check_every_variant(admin, name)

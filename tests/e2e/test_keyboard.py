"""The chat with the keyboard alone (issue 13, item 9): sign in, start a conversation, send, get
an answer, stop one with Esc, find and open a conversation with Ctrl+K, with a visible focus
ring on what the keyboard reaches. Only ``page.keyboard`` acts on the page after the first
``goto``; the fake model's pace makes the stream long enough to stop."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.a11y import assert_accessible
from tests.e2e.support import FOCUS_RING, PASSWORD, FakeStack, fake_stack, new_context, tab_to


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeStack]:
    yield from fake_stack(tmp_path_factory.mktemp("keyboard"))


@pytest.fixture
def keyboard_page(browser: Browser) -> Iterator[Page]:
    context = new_context(browser)
    yield context.new_page()
    context.close()


def focused(page: Page) -> str:
    return str(page.evaluate("document.activeElement.outerHTML.slice(0, 120)"))


def assert_focus_ring(page: Page) -> None:
    assert page.evaluate(FOCUS_RING), f"no visible focus ring on {focused(page)}"


def test_the_chat_with_the_keyboard_alone(keyboard_page: Page, stack: FakeStack) -> None:
    page = keyboard_page
    page.goto(f"{stack.url}/signin")
    assert page.evaluate("document.activeElement.id") == "username"  # autofocus
    page.keyboard.type("eve")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/chat$"))

    expect(page.locator("#content")).to_be_focused()  # the message box, ready for typing
    tab_to(page, "a.skip", backwards=True)  # the skip link comes first in the page
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    assert_focus_ring(page)
    tab_to(page, "a.wide")  # + New chat, in the sidebar
    assert_focus_ring(page)
    page.keyboard.press("Enter")  # the message box of a new conversation
    expect(page).to_have_url(re.compile(r"/chat/?$"))

    expect(page.locator("#content")).to_be_focused()  # focused on arrival
    assert_focus_ring(page)
    page.keyboard.type("hello from the keyboard")
    page.keyboard.press("Enter")  # Enter sends: the conversation is stored with it
    expect(page).to_have_url(re.compile(r"/chat/\d+$"))
    first = page.url
    answer = page.locator(".message.assistant.complete")
    expect(answer).to_contain_text("hello from the keyboard")
    tab_to(page, "#message-actions button")  # the actions are reachable: Regenerate
    assert_focus_ring(page)
    expect(page.get_by_role("button", name="Regenerate")).to_be_focused()

    tab_to(page, "a.wide", backwards=True)  # back up to + New chat
    page.keyboard.press("Enter")
    expect(page).not_to_have_url(first)
    stack.upstream.chunk_delay = 0.1  # 150 words: 15 s, long enough to stop
    try:
        expect(page.locator("#content")).to_be_focused()
        page.keyboard.type(" ".join(f"word{n}" for n in range(150)))
        page.keyboard.press("Enter")
        expect(page.locator(".streaming .text p")).not_to_be_empty()
        assert_accessible(page, "the chat while an answer streams")
        page.keyboard.press("Escape")  # Esc stops the answer
        expect(page.locator(".message.assistant .badge")).to_have_text("Stopped")
    finally:
        stack.upstream.chunk_delay = 0

    page.keyboard.press("Control+k")  # the search, from anywhere
    expect(page.locator("#search")).to_be_focused()
    assert_focus_ring(page)
    page.keyboard.type("from the keyboard")
    found = page.locator("#conversation-list a")
    expect(found).to_have_count(1)
    expect(page.locator("#conversation-list mark")).to_have_text("from the keyboard")
    tab_to(page, "#conversation-list a")
    assert_focus_ring(page)
    page.keyboard.press("Enter")
    expect(page).to_have_url(first)
    expect(page.locator(".message.user")).to_contain_text("hello from the keyboard")

"""The workspace's behaviour in Chromium (issue 13, items 1 and 2: what lives in
static/switchboard.js and in htmx's handling of the SSE events): Markdown rendered while an answer
streams, the actions and the title updated in place when it ends, copy buttons, auto-scroll that
stops when the reader scrolls up, Ctrl+K and Esc.

Against the in-process fake model (``live_fake``), not vLLM: what is tested here is the page, and
the fake's pace (``chunk_delay``) makes the streams long enough to watch."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from switchboard.accounts.services import create_user
from tests.e2e.a11y import assert_accessible
from tests.e2e.conftest import screenshot
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer
from tests.support.markdown_upstream import MarkdownUpstream

PASSWORD = "workspace password 1"  # pragma: allowlist secret
CODE = "def add(a, b):\n    return a + b\n"
CODE_ANSWER = (
    f"Here is the function you asked for:\n\n```python\n{CODE}```\n\n"
    "It adds **two** numbers, and that is all it does for now, really, nothing more."
)


@pytest.fixture
def fake_upstream() -> FakeUpstream:
    return MarkdownUpstream(chunk_delay=0.05)


@pytest.fixture
def signed_in(page: Page, live_fake: LiveServer) -> Page:
    live_fake.run(create_user("wes", password=PASSWORD))
    page.goto(f"{live_fake.url}/signin")
    page.get_by_label("Username").fill("wes")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/chat$"))
    return page  # on the message box: the first message starts the conversation


def send(page: Page, text: str) -> None:
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send").click()


def test_markdown_while_streaming_then_actions_and_title_in_place(signed_in: Page) -> None:
    page = signed_in
    page.evaluate("window.notReloaded = true")
    send(page, CODE_ANSWER)
    # while the answer streams (its Stop button is there), its code is already a highlighted block
    page.wait_for_function(
        """() => document.querySelector(".message .stop")
                 && document.querySelector(".streaming .text pre .hl-k")"""
    )
    assert "```" not in page.locator(".streaming .text").inner_text()
    expect(page.locator(".message .stop")).to_have_count(0)  # it ended
    expect(page.get_by_role("button", name="Regenerate")).to_be_visible()
    expect(page.get_by_text("Edit last message")).to_be_visible()
    expect(page.get_by_label("Title")).to_have_value(re.compile(r"^Here is the function"))
    expect(page.locator(".message.assistant strong")).to_have_text("two")
    assert page.evaluate("window.notReloaded") is True  # all of it without a reload
    screenshot(page, "workspace-answer")
    assert_accessible(page, "an answer with code, its actions and title")


def test_copy_buttons_copy_a_code_block_and_a_whole_message(
    signed_in: Page, live_fake: LiveServer, fake_upstream: FakeUpstream
) -> None:
    page = signed_in
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_fake.url)
    fake_upstream.chunk_delay = 0
    send(page, CODE_ANSWER)
    answer = page.locator(".message.assistant.complete")
    expect(answer).to_be_visible()
    answer.locator(".code-block .copy").click()
    expect(answer.locator(".code-block .copy")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == CODE
    answer.locator(".message-copy").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("Here is the function you asked for:")
    assert "return a + b" in copied
    assert "Copy" not in copied  # the code block's button is not part of the text


def test_auto_scroll_follows_the_answer_until_the_reader_scrolls_up(signed_in: Page) -> None:
    page = signed_in
    page.set_viewport_size({"width": 1000, "height": 500})
    long_answer = "\n\n".join(f"Paragraph {n} of a long answer." for n in range(120))
    send(page, long_answer)
    page.wait_for_function("() => window.scrollY > 300")  # it follows the answer down
    page.mouse.move(500, 250)
    page.mouse.wheel(0, -100_000)  # the reader scrolls up to read the beginning
    page.wait_for_function("() => window.scrollY < 50")
    height = page.evaluate("document.documentElement.scrollHeight")
    page.wait_for_function(f"() => document.documentElement.scrollHeight > {height} + 200")
    assert page.evaluate("window.scrollY") < 50  # it stayed where the reader is
    expect(page.locator(".message .stop")).to_have_count(0, timeout=60_000)


def test_ctrl_k_focuses_search_and_escape_stops_the_answer(signed_in: Page) -> None:
    page = signed_in
    page.keyboard.press("Control+k")
    assert page.evaluate("document.activeElement.id") == "search"
    page.keyboard.press("Meta+k")
    assert page.evaluate("document.activeElement.id") == "search"
    send(page, " ".join(f"word{n}" for n in range(400)))  # 20 s at this pace
    expect(page.locator(".streaming .text p")).not_to_be_empty()
    page.keyboard.press("Escape")
    expect(page.locator(".message.assistant .badge")).to_have_text("Stopped")

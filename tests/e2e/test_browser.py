"""End to end in Chromium: sign in, watch an answer stream in, stop one, find the conversation
after a reload, rename and delete it, create and revoke a key."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from switchboard.accounts.services import create_user
from switchboard.chat.titles import MAX_CHARS as TITLE_CHARS
from tests.e2e.a11y import assert_accessible
from tests.e2e.conftest import screenshot
from tests.support.live import LiveServer
from tests.support.stack_fixtures import AppFactory

PASSWORD = "e2e password 123"
# Records, in ``window.streamedLengths``, each new length of the last answer's streaming text,
# from the page itself: asking from the test after the first piece raced a short answer that
# was already whole by then (and never grew again).
RECORD_STREAMED_LENGTHS = """() => {
    if (window.streamedLengths) return;
    window.streamedLengths = [];
    new MutationObserver(() => {
        const texts = document.querySelectorAll(".message.assistant .text");
        const last = texts[texts.length - 1];
        const length = last ? last.innerText.length : 0;
        const seen = window.streamedLengths;
        if (length && seen[seen.length - 1] !== length) seen.push(length);
    }).observe(document, {childList: true, subtree: true, characterData: true});
}"""


QUESTION = "Tell me about the moon in three sentences."
PROVISIONAL = QUESTION  # a conversation is first named after its first message


def assert_clean_title(title: str) -> None:
    """One line, no quotes, no surrounding spaces, at most 60 characters, not empty."""
    assert title, repr(title)
    assert title == title.strip(), repr(title)
    assert "\n" not in title, repr(title)
    assert len(title) <= TITLE_CHARS, repr(title)
    assert not set(title) & set('"\u201c\u201d`'), repr(title)


@pytest.fixture
def app(live_app: AppFactory) -> LiveServer:
    server = live_app()
    server.run(create_user("eve", password=PASSWORD))
    return server


def sign_in(page: Page, app: LiveServer) -> None:
    page.goto(f"{app.url}/chat")
    expect(page).to_have_url(re.compile(r"/signin"))
    screenshot(page, "signin")
    page.get_by_label("Username").fill("eve")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/chat$"))


def test_chat_streams_survives_reload_and_can_be_renamed_and_deleted(
    page: Page, app: LiveServer
) -> None:
    sign_in(page, app)
    page.get_by_role("link", name="+ New chat").first.click()
    expect(page).to_have_url(re.compile(r"/chat/?$"))
    page.add_init_script(f"({RECORD_STREAMED_LENGTHS})()")  # the next page, if sending loads one
    page.evaluate(RECORD_STREAMED_LENGTHS)  # this one
    box = page.get_by_label("Message")
    box.fill(QUESTION)
    box.press("Enter")  # Enter sends: the conversation is stored with it
    expect(page).to_have_url(re.compile(r"/chat/\d+$"))
    expect(page.locator(".message.assistant .text").last).not_to_be_empty()
    # Markdown is rendered while the answer streams; the finished message is marked complete
    # (a generous deadline: the CPU model writes a few sentences in tens of seconds)
    expect(page.locator(".message.assistant.complete").last).to_be_visible(timeout=600_000)
    # it came in pieces: the streaming text grew after it first appeared
    lengths = page.evaluate("window.streamedLengths")
    assert len(lengths) >= 2, lengths
    assert lengths[0] < max(lengths), lengths
    # the first answer brought a title from the model (issue 21, item 6): in the title field,
    # the sidebar and the page's <title>, without a reload; whatever the model said, it is not
    # the first message's title any more, and it is clean
    title_field = page.get_by_label("Title")
    expect(title_field).not_to_have_value(PROVISIONAL)
    title = title_field.input_value()
    assert_clean_title(title)
    current = page.locator(".conversations a[aria-current=page]")
    expect(current).to_have_text(title)
    expect(page).to_have_title(f"{title} · Switchboard")
    screenshot(page, "chat")
    assert_accessible(page, "the chat after a real answer")
    answer = page.locator(".message.assistant.complete .markdown").last.inner_text()
    assert answer.strip()
    page.reload()
    expect(page.locator(".message.user").last).to_contain_text("Tell me about the moon")
    assert page.locator(".message.assistant.complete .markdown").last.inner_text() == answer
    expect(current).to_have_text(title)  # stored
    expect(title_field).to_have_value(title)

    page.get_by_label("Title").fill("Moon facts")
    page.get_by_role("button", name="Rename").click()
    expect(page.locator(".conversations a[aria-current=page]")).to_have_text("Moon facts")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete").click()
    expect(page).to_have_url(re.compile(r"/chat/?$"))
    expect(page.locator("#conversation-list")).not_to_contain_text("Moon facts")


def test_stop_a_long_answer(page: Page, app: LiveServer) -> None:
    sign_in(page, app)
    page.get_by_role("link", name="+ New chat").first.click()
    box = page.get_by_label("Message")
    box.fill("Write a very long essay about the history of computing.")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".message.assistant .text").last).not_to_be_empty()
    page.get_by_role("button", name="Stop").click()
    expect(page.locator(".message.assistant .badge").last).to_have_text("Stopped")
    page.reload()
    expect(page.locator(".message.assistant .badge").last).to_have_text("Stopped")


def test_model_server_down_shows_a_message(page: Page, live_app: AppFactory) -> None:
    # This app's model server is unreachable (nothing listens on its port).
    down = live_app(upstream_urls="http://127.0.0.1:9/v1", upstream_connect_timeout=1)
    down.run(create_user("eve", password=PASSWORD))
    sign_in(page, down)
    page.get_by_role("link", name="+ New chat").first.click()
    page.get_by_label("Message").fill("Are you there?")
    page.get_by_role("button", name="Send").click()
    alert = page.locator(".message.assistant [role=alert]").last
    expect(alert).to_contain_text("unavailable")
    expect(alert).to_contain_text("request id")
    screenshot(page, "model-down")
    assert_accessible(page, "the chat with the model down")


def test_usage_and_admin_pages(page: Page, app: LiveServer) -> None:
    app.run(create_user("root", password=PASSWORD, role="admin"))
    page.goto(f"{app.url}/signin")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Usage").click()
    # a fresh app: nobody has used it yet (zero totals), and both charts cover the 30 days
    expect(page.get_by_role("heading", name="Usage", exact=True)).to_be_visible()
    expect(page.locator("section.page")).to_contain_text("Last 30 days: 0 requests, 0 tokens")
    for what in ("requests", "tokens"):
        expect(page.get_by_role("img", name=re.compile(f"^{what} per day, "))).to_be_visible()
    screenshot(page, "usage")
    page.get_by_role("link", name="Users").click()
    expect(page.locator("table")).to_contain_text("eve")
    screenshot(page, "admin")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.goto(f"{app.url}/chat")
    screenshot(page, "chat-phone")


def test_create_and_revoke_a_key(page: Page, app: LiveServer) -> None:
    sign_in(page, app)
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#new-key")).to_contain_text("sk-sb-")
    screenshot(page, "keys")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke").click()
    expect(page.locator("table.keys")).to_contain_text("revoked")

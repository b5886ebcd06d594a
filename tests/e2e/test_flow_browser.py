"""How a conversation starts and how its answers flow (issue 26; issue 21, item 4), in Chromium
against the fake model: signed-in people land on a message box, a conversation is stored with
its first message, its title shows everywhere at once, an answer goes on when its page is left
and is complete when the conversation is opened again, and a stopped answer is no error."""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from switchboard.accounts.services import create_user
from switchboard.chat.services import title_from
from tests.e2e.a11y import assert_accessible
from tests.e2e.conftest import WAIT_MS, screenshot
from tests.e2e.support import PASSWORD, FakeStack, fake_stack, new_context, send, sign_in
from tests.support.waiting import wait_for

WORDS = " ".join(f"word{n}" for n in range(80))
"""An answer of 80 pieces (the fake model echoes the question)."""
_names = itertools.count()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeStack]:
    yield from fake_stack(tmp_path_factory.mktemp("flow"))


@pytest.fixture
def person(browser: Browser, stack: FakeStack) -> Iterator[Page]:
    """A new person's page (nothing in their history), signed in."""
    name = f"flow{next(_names)}"
    stack.server.run(create_user(name, password=PASSWORD))
    context = new_context(browser)
    page = context.new_page()
    sign_in(page, stack.url, name)
    yield page
    stack.upstream.chunk_delay = 0
    if stack.upstream.hold is not None:
        stack.upstream.hold.set()
        stack.upstream.hold = None
    context.close()


def held(stack: FakeStack) -> threading.Event:
    """The model answers once the test sets the returned event: an answer stays live until
    then, whatever the machine's pace."""
    hold = stack.upstream.hold = threading.Event()
    return hold


def conversation_links(page: Page) -> list[str]:
    return page.locator("#conversation-list a").all_inner_texts()


def errors_of(page: Page, stack: FakeStack, model: str) -> str:
    """The usage page's error count for ``model``, once its row is written (within a second of
    the request's end)."""
    page.goto(f"{stack.url}/usage")
    table = page.get_by_role("region", name="Usage per model")

    def written() -> bool:
        if model in table.inner_text():
            return True
        page.reload()
        return False

    wait_for(written, lambda: table.inner_text(), WAIT_MS / 1000, every=0.3)
    return table.locator("tr", has_text=model).locator("td").last.inner_text()


def test_a_message_box_on_arrival_and_a_conversation_stored_with_its_first_message(
    person: Page,
) -> None:
    page = person
    box = page.get_by_label("Message", exact=True)
    expect(box).to_be_visible()  # the message box, not a button to create a conversation
    expect(box).to_be_focused()
    expect(page.get_by_text("Start a conversation")).to_have_count(0)
    screenshot(page, "chat-arrival")
    assert_accessible(page, "the message box on arrival")
    for _ in range(2):  # "+ New chat" clicked and left: nothing is stored
        page.get_by_role("link", name="+ New chat").first.click()
        expect(page).to_have_url(re.compile(r"/chat/?$"))
    page.reload()
    expect(page.locator("#conversation-list")).to_contain_text("No conversations yet.")

    page.evaluate("window.notReloaded = true")
    send(page, "Plan a picnic for four people")
    expect(page).to_have_url(re.compile(r"/chat/\d+$"))  # the new conversation's address
    expect(page.locator(".message.user")).to_have_text(re.compile("Plan a picnic"))
    expect(page.locator(".message.assistant.complete")).to_contain_text("four people")
    assert conversation_links(page) == ["Plan a picnic for four people"]
    assert page.evaluate("window.notReloaded") is True  # all of it without a reload
    page.reload()
    expect(page.locator(".message.assistant.complete")).to_contain_text("four people")
    assert conversation_links(page) == ["Plan a picnic for four people"]


def test_the_title_shows_in_the_tab_the_title_field_and_the_list_while_the_answer_streams(
    person: Page, stack: FakeStack
) -> None:
    page = person
    expect(page).to_have_title("Chat · Switchboard")
    hold = held(stack)
    send(page, WORDS)
    expect(page.locator(".message .stop")).to_be_visible()  # the answer is live until released
    title = title_from(WORDS)
    expect(page.get_by_label("Title")).to_have_value(title)
    expect(page).to_have_title(f"{title} · Switchboard")
    expect(page.locator(".conversations a[aria-current=page]")).to_have_text(title)
    screenshot(page, "chat-titled-while-streaming")
    hold.set()
    expect(page.locator(".message.assistant.complete")).to_contain_text("word79")
    expect(page).to_have_title(f"{title} · Switchboard")

    # an existing empty conversation (made by a script): its first message titles it in place
    page.request.post(f"{stack.url}/chat/new", headers={"x-csrftoken": csrf(page)})
    page.goto(f"{stack.url}/chat")
    page.locator("#conversation-list a", has_text="New chat").click()
    expect(page).to_have_title("New chat · Switchboard")
    hold = held(stack)
    send(page, "Name this one")
    expect(page.locator(".message .stop")).to_be_visible()
    expect(page.get_by_label("Title")).to_have_value("Name this one")
    expect(page).to_have_title("Name this one · Switchboard")
    hold.set()
    expect(page.locator(".message.assistant.complete")).to_contain_text("Name this one")


def csrf(page: Page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")


def test_an_answer_goes_on_when_its_page_is_left_and_is_complete_when_opened_again(
    person: Page, stack: FakeStack
) -> None:
    page = person
    hold = held(stack)
    send(page, WORDS)
    expect(page).to_have_url(re.compile(r"/chat/\d+$"))
    expect(page.locator(".message .stop")).to_be_visible()  # being written
    conversation = page.url
    page.get_by_role("link", name="API keys").click()  # another page while it is written
    expect(page).to_have_url(re.compile(r"/keys$"))
    hold.set()
    page.goto(conversation)
    answer = page.locator(".message.assistant.complete")
    expect(answer).to_contain_text("word79")
    expect(answer).to_contain_text("word0 word1")
    expect(page.locator(".message.assistant .badge")).to_have_count(0)  # not "Stopped"

    # the same with the tab closed
    hold = held(stack)
    other = page.context.new_page()
    other.goto(f"{stack.url}/chat")
    send(other, WORDS.replace("word", "item"))
    expect(other).to_have_url(re.compile(r"/chat/\d+$"))
    expect(other.locator(".message .stop")).to_be_visible()
    second = other.url
    other.close()
    hold.set()
    page.goto(second)
    expect(page.locator(".message.assistant.complete")).to_contain_text("item79")
    assert errors_of(page, stack, "fake-model") == "0"


def test_a_stopped_answer_is_recorded_as_stopped_not_as_an_error(
    person: Page, stack: FakeStack
) -> None:
    page = person
    stack.upstream.chunk_delay = 0.05
    send(page, " ".join(f"word{n}" for n in range(400)))  # 20 s at this pace
    expect(page.locator(".streaming .text")).to_contain_text("word1")
    page.get_by_role("button", name="Stop").click()
    expect(page.locator(".message.assistant .badge")).to_have_text("Stopped")
    assert "word1" in page.locator(".message.assistant .markdown").inner_text()
    page.reload()
    expect(page.locator(".message.assistant .badge")).to_have_text("Stopped")
    assert errors_of(page, stack, "fake-model") == "0"

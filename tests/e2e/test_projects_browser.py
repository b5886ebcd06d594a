"""Projects in Chromium (issue 21, item 7): created from the sidebar (a name of spaces explained
in place), a conversation moved into it, the project's instructions in the request the gateway
sends the model (the fake model records it), and deleting the project keeps the conversation;
axe and screenshots of the project page and of a conversation in a project."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.a11y import check_every_variant
from tests.e2e.support import FakeStack, fake_stack, new_chat, new_context, send, sign_in

INSTRUCTIONS = "Answer every question as a haiku."


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeStack]:
    yield from fake_stack(tmp_path_factory.mktemp("projects"))


@pytest.fixture
def member(browser: Browser, stack: FakeStack) -> Iterator[Page]:
    context = new_context(browser)
    page = context.new_page()
    sign_in(page, stack.url, "eve")
    yield page
    context.close()


def system_message(request: dict[str, Any]) -> str | None:
    first = request["messages"][0]
    return str(first["content"]) if first["role"] == "system" else None


def test_a_project_from_the_sidebar_gives_its_instructions_to_a_moved_conversation(
    member: Page, stack: FakeStack
) -> None:
    page = member
    new_chat(page)
    send(page, "a question before any project")
    expect(page.locator(".message.assistant.complete")).to_be_visible()
    assert system_message(stack.upstream.requests[-1]) is None
    conversation_url = page.url

    # created from the sidebar: a name of spaces is explained in place, then a good one
    page.get_by_text("+ New project").click()
    page.get_by_label("Project name").fill("   ")
    page.get_by_role("button", name="Create project").click()
    expect(page.locator("#new-project .error")).to_have_text("Give the project a name.")
    page.get_by_label("Project name").fill("Poetry club")
    page.get_by_label(re.compile("^Instructions for every conversation")).fill(INSTRUCTIONS)
    page.get_by_role("button", name="Create project").click()
    expect(page).to_have_url(re.compile(r"/chat/projects/\d+$"))
    project_url = page.url
    expect(page.get_by_role("heading", name="Poetry club", level=1)).to_be_visible()
    expect(page.locator(".instructions")).to_contain_text(INSTRUCTIONS)
    current = page.get_by_role("navigation", name="Projects").locator("[aria-current=page]")
    expect(current).to_have_text("Poetry club")
    check_every_variant(page, "chat-project")

    # the conversation moves in: out of the main list, into the project's
    page.goto(conversation_url)
    page.get_by_label("Project", exact=True).select_option(label="Poetry club")
    page.get_by_role("button", name="Move").click()
    expect(page.locator("#params")).to_contain_text("In project Poetry club")
    expect(page.locator("#conversation-list")).not_to_contain_text("a question before any")
    send(page, "a question inside the project")
    expect(page.locator(".message.assistant.complete")).to_have_count(2)
    assert system_message(stack.upstream.requests[-1]) == INSTRUCTIONS
    check_every_variant(page, "chat-in-project")
    page.goto(project_url)
    expect(page.locator("#project-conversations")).to_contain_text("a question before any")

    # deleted, keeping its conversations: back in the main list, without the instructions
    page.locator("#delete-project summary").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete project").click()
    expect(page).to_have_url(re.compile(r"/chat$"))
    expect(page.get_by_role("navigation", name="Projects")).to_contain_text("No projects yet.")
    page.locator("#conversation-list a", has_text="a question before any").click()
    send(page, "a question after the project")
    expect(page.locator(".message.assistant.complete")).to_have_count(3)
    assert system_message(stack.upstream.requests[-1]) is None

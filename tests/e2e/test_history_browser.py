"""History and import in Chromium (issue 13, items 3 and 4): a ChatGPT ``conversations.json``
chosen in the sidebar's import form, the report of what was imported and left out, the list
grouped by date (the import keeps the dates), pin, archive (out of the list, still found by a
search, marked Archived) and a search result's snippet; axe and screenshots of these states."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.a11y import check_every_variant
from tests.e2e.support import FakeStack, fake_stack, new_context, sign_in


def node(
    node_id: str, role: str | None, parts: list[Any], parent: str | None, children: list[str]
) -> dict[str, Any]:
    message = None
    if role is not None:
        content = {"content_type": "text", "parts": parts}
        message = {"id": node_id, "author": {"role": role}, "content": content}
    return {"id": node_id, "message": message, "parent": parent, "children": children}


def last_active(days_ago: int) -> float:
    """Now for today, else noon (UTC, as the history groups) that many calendar days ago: a
    fixed number of hours back would cross into another day shortly after midnight."""
    if days_ago == 0:
        return time.time()
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=days_ago)
    return dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC).timestamp()


def conversation(title: str, days_ago: int, question: str, **extra: Any) -> dict[str, Any]:
    """A ChatGPT conversation last active ``days_ago`` calendar days ago (a system message
    first, which the import leaves out)."""
    when = last_active(days_ago)
    mapping = {
        "root": node("root", None, [], None, ["sys"]),
        "sys": node("sys", "system", ["You are ChatGPT."], "root", ["q"]),
        "q": node("q", "user", [question], "sys", ["a"]),
        "a": node("a", "assistant", [f"An answer about {title.lower()}."], "q", []),
    }
    return {
        "title": title,
        "create_time": when,
        "update_time": when,
        "mapping": mapping,
        "current_node": "a",
        **extra,
    }


def chatgpt_export() -> list[dict[str, Any]]:
    picture = node("x", "user", [{"content_type": "image_asset_pointer"}], None, [])
    return [
        conversation("Fresh ideas", 0, "What should we build today?"),
        conversation("Yesterday's bug", 1, "Why does the parser drop the zebra token?"),
        conversation("Last week plans", 4, "Plan the sprint for the team."),
        conversation("Old recipe", 40, "How long do I bake sourdough bread?"),
        {"title": "Only a picture", "current_node": "x", "mapping": {"x": picture}},
    ]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeStack]:
    yield from fake_stack(tmp_path_factory.mktemp("history"))


@pytest.fixture(scope="module")
def member(browser: Browser, stack: FakeStack) -> Iterator[Page]:
    context = new_context(browser)
    page = context.new_page()
    sign_in(page, stack.url, "eve")
    yield page
    context.close()


def headings(page: Page) -> list[str]:
    return page.locator("#conversation-list h2").all_text_contents()


def open_conversation(page: Page, title: str) -> None:
    page.locator("#conversation-list a", has_text=title).click()
    expect(page.get_by_label("Title")).to_have_value(title)


def test_import_a_chatgpt_export_with_a_report(
    member: Page, tmp_path_factory: pytest.TempPathFactory
) -> None:
    page = member
    export = tmp_path_factory.mktemp("export") / "conversations.json"
    export.write_text(json.dumps(chatgpt_export()))
    expect(page.locator("#conversation-list")).to_contain_text("No conversations yet.")
    page.get_by_text("Export / import").click()
    page.get_by_label(re.compile("^Import conversations")).set_input_files(Path(export))
    page.get_by_role("button", name="Import", exact=True).click()
    report = page.locator(".import-report")
    expect(report).to_contain_text(
        re.compile(r"Imported 4 conversations with 8 messages from ChatGPT")
    )
    skipped = report.locator(".skipped li")
    expect(skipped.filter(has_text="1 conversation skipped")).to_have_count(1)
    expect(skipped.filter(has_text=re.compile(r"4 messages skipped: .*system"))).to_have_count(1)
    # the list shows them at once, grouped by their own dates
    expect(page.locator("#conversation-list")).to_contain_text("Old recipe")
    assert headings(page) == ["Today", "Yesterday", "Previous 7 days", "Older"]
    check_every_variant(page, "chat-import-report")


def test_pin_archive_and_search_with_a_snippet(member: Page) -> None:
    page = member
    expect(page.locator("#conversation-list")).to_contain_text("Old recipe")
    open_conversation(page, "Old recipe")
    page.get_by_role("button", name="Pin", exact=True).click()
    expect(page.get_by_role("button", name="Unpin")).to_be_visible()
    expect(page.locator("#conversation-list h2").first).to_have_text("Pinned")
    first = page.locator("#conversation-list a").first
    expect(first).to_have_text("Old recipe")
    assert headings(page) == ["Pinned", "Today", "Yesterday", "Previous 7 days"]

    open_conversation(page, "Yesterday's bug")
    page.get_by_role("button", name="Archive", exact=True).click()
    expect(page).to_have_url(re.compile(r"/chat$"))
    expect(page.locator("#conversation-list")).not_to_contain_text("Yesterday's bug")
    assert "Yesterday" not in headings(page)

    page.get_by_label("Search conversations").fill("zebra")
    found = page.locator("#conversation-list li.item")
    expect(found).to_have_count(1)
    expect(found).to_contain_text("Yesterday's bug")
    expect(found.locator(".badge")).to_have_text("Archived")
    expect(found.locator(".snippet")).to_contain_text("drop the zebra token")
    expect(found.locator(".snippet mark")).to_have_text("zebra")
    check_every_variant(page, "chat-search")
    found.locator("a").click()  # an archived conversation opens from the search
    expect(page.get_by_text("This conversation is archived")).to_be_visible()
    expect(page.get_by_role("button", name="Unarchive")).to_be_visible()

    page.get_by_label("Search conversations").fill("no such words anywhere")
    expect(page.locator("#conversation-list")).to_contain_text("No matches.")

"""Errors in place, the model picker and budgets in Chromium (issue 13, items 2, 5 and 8): the
picker lists the live models and the answer uses the one chosen; model down shows a banner whose
Retry works once the model is back; a rate limit and a spent budget say so in the chat, with
when they reset; the admin sets a price and a budget in the Budgets page. axe and screenshots of
each state."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from switchboard.accounts.services import create_user
from tests.e2e.a11y import check_every_variant
from tests.e2e.conftest import WAIT_MS
from tests.e2e.support import (
    PASSWORD,
    FakeStack,
    fake_stack,
    new_chat,
    new_context,
    send,
    sign_in,
)
from tests.support.waiting import wait_for


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeStack]:
    yield from fake_stack(tmp_path_factory.mktemp("errors"))


@pytest.fixture
def signed_in(browser: Browser, stack: FakeStack) -> Iterator[Page]:
    """A page for ``eve``, in a new conversation."""
    context = new_context(browser)
    page = context.new_page()
    sign_in(page, stack.url, "eve")
    new_chat(page)
    yield page
    context.close()


def wait_until_ready(page: Page, url: str) -> None:
    """The app's readiness probe sees the model again (its health check runs every 0.5 s)."""
    wait_for(
        lambda: page.request.get(f"{url}/readyz").status == 200,
        "the app sees the model back",
        WAIT_MS / 1000,
        every=0.2,
    )


def test_the_picker_lists_the_live_models_and_the_answer_uses_the_choice(
    signed_in: Page, stack: FakeStack
) -> None:
    page = signed_in
    picker = page.get_by_label("Model for this conversation")
    options = picker.locator("option").all_text_contents()
    assert options == ["Default (fake-model)", "fake-model", "other-model"]
    params = page.locator("#params")
    expect(params).to_contain_text("Temperature 0.7")
    expect(params).to_contain_text("Max tokens 512")
    expect(params).to_contain_text("No system prompt")
    picker.select_option("other-model")
    send(page, "which model answers")
    expect(page.locator(".message.assistant.complete")).to_contain_text("which model answers")
    assert stack.upstream.requests[-1]["model"] == "other-model"
    expect(picker).to_have_value("other-model")  # the picker keeps the choice


def test_model_down_shows_a_banner_whose_retry_works(signed_in: Page, stack: FakeStack) -> None:
    page = signed_in
    stack.upstream.healthy = False
    try:
        send(page, "are you there")
        banner = page.locator(".message.assistant .error-banner")
        expect(banner).to_have_attribute("role", "alert")
        expect(banner).to_contain_text("The model is unavailable right now.")
        check_every_variant(page, "chat-model-down")
    finally:
        stack.upstream.healthy = True
    wait_until_ready(page, stack.url)
    banner.get_by_role("button", name="Retry").click()
    expect(page.locator(".message.assistant.complete")).to_contain_text("are you there")
    expect(page.locator(".error-banner")).to_have_count(0)


def test_a_rate_limit_says_when_it_resets(browser: Browser, stack: FakeStack) -> None:
    stack.server.run(create_user("rita", password=PASSWORD, rpm=1))
    context = new_context(browser)
    page = context.new_page()
    sign_in(page, stack.url, "rita")
    new_chat(page)
    send(page, "first")
    expect(page.locator(".message.assistant.complete")).to_contain_text("first")
    send(page, "second")
    banner = page.locator(".message.assistant .limit-banner")
    expect(banner).to_contain_text("Rate limit reached")
    expect(banner.locator(".resets")).to_contain_text(re.compile(r"It resets in (\d+ s|1 min)"))
    expect(banner.get_by_role("button", name="Try again")).to_be_visible()
    check_every_variant(page, "chat-rate-limited")
    page.reload()  # kept with the message
    expect(page.locator(".limit-banner .resets")).to_contain_text("It resets in")
    context.close()


def test_the_admin_sets_a_budget_and_the_chat_says_it_is_spent(
    browser: Browser, stack: FakeStack
) -> None:
    stack.server.run(create_user("bea", password=PASSWORD))
    admin_context = new_context(browser)
    admin = admin_context.new_page()
    sign_in(admin, stack.url, "root")
    admin.get_by_role("link", name="Budgets").click()
    admin.get_by_role("textbox", name="Model").fill("fake-model")
    admin.get_by_label("Prompt per million").fill("1.5")
    admin.get_by_label("Completion per million").fill("3")
    admin.get_by_role("button", name="Save price").click()
    expect(admin.get_by_role("region", name="Prices per model")).to_contain_text("fake-model")
    admin.get_by_label("For", exact=True).select_option("user")
    admin.get_by_label("Username or key number").fill("bea")
    admin.get_by_label("Tokens").fill("50")
    admin.get_by_role("button", name="Save budget").click()
    expect(admin.locator("p.notice")).to_contain_text("Saved the budget.")
    expect(admin.get_by_role("region", name="Monthly budgets")).to_contain_text("bea")
    check_every_variant(admin, "admin-budgets-set")
    admin_context.close()

    context = new_context(browser)
    page = context.new_page()
    sign_in(page, stack.url, "bea")
    new_chat(page)
    send(page, "hello")
    refusal = page.locator(".message.assistant [role=alert]")
    expect(refusal).to_contain_text("You exceeded your current quota")
    expect(refusal).to_contain_text("The budget renews on")
    check_every_variant(page, "chat-over-budget")
    page.get_by_role("link", name="Usage").click()
    expect(page.locator("section.page")).to_contain_text("of a budget of 50 tokens")
    context.close()


def test_an_htmx_error_is_a_dismissible_toast_in_place(browser: Browser, stack: FakeStack) -> None:
    """Issue 21, item 5: the conversation is deleted in another tab, then a message is sent
    from this one: the 404 comes back as a toast over the page, which stays as it was (the
    message typed is still there), and the toast goes away when dismissed."""
    context = new_context(browser)
    page = context.new_page()
    sign_in(page, stack.url, "eve")
    new_chat(page)
    send(page, "hello")  # the conversation is stored with its first message
    expect(page).to_have_url(re.compile(r"/chat/\d+$"))
    expect(page.locator(".message.assistant").last).not_to_have_class(re.compile("streaming"))
    url = page.url
    other = context.new_page()
    other.goto(url)
    other.once("dialog", lambda dialog: dialog.accept())
    other.get_by_role("button", name="Delete").click()
    expect(other).to_have_url(re.compile(r"/chat/?$"))
    other.close()
    send(page, "is anyone there")
    toast = page.locator("#toast .toast")
    expect(toast).to_contain_text("That conversation does not exist.")
    expect(toast).to_contain_text("Error 404")
    expect(toast).to_contain_text(re.compile(r"request id [0-9a-f]{32}"))
    expect(page.locator("#toast")).to_have_attribute("role", "alert")
    expect(page.locator("#toast")).to_have_attribute("aria-live", "assertive")
    assert page.url == url  # in place: no error page
    expect(page.get_by_label("Message", exact=True)).to_have_value("is anyone there")
    expect(page.locator(".error-page")).to_have_count(0)
    check_every_variant(page, "chat-htmx-error-toast")
    toast.get_by_role("button", name="Dismiss").click()
    expect(page.locator("#toast .toast")).to_have_count(0)
    context.close()

"""The keys page in Chromium (issue 26): a new user creates a key and finds what a client needs:
the full base URL with a Copy button, snippets for curl, Python and Node that work as pasted
(the base URL and model filled in), the key's limits as numbers and counts with the right
plural; screenshots and axe at every width and scheme."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.a11y import check_every_variant
from tests.e2e.support import FakeStack, fake_stack, new_context, sign_in
from tests.e2e.test_usage_browser import reload_until_contains


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeStack]:
    yield from fake_stack(tmp_path_factory.mktemp("keys"))


def test_a_new_key_comes_with_the_base_url_snippets_and_its_limits(
    browser: Browser, stack: FakeStack
) -> None:
    context = new_context(browser)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.url)
    page = context.new_page()
    sign_in(page, stack.url, "eve")
    page.get_by_role("link", name="API keys").click()
    base = f"{stack.url}/v1"
    expect(page.locator("#base-url")).to_have_text(base)
    page.get_by_role("button", name="Copy base URL").click()
    expect(page.get_by_role("button", name="Copy base URL")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == base

    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key").inner_text()
    for name, expected in (("curl", f"curl {base}/chat/completions"),
                           ("Python", f'base_url="{base}"'),
                           ("Node", f'baseURL: "{base}"')):  # fmt: skip
        snippet = page.get_by_role("region", name=f"{name} example")
        expect(snippet).to_contain_text(expected)
        expect(snippet).to_contain_text("fake-model")
    page.get_by_role("button", name="Copy the curl example").click()
    assert f"curl {base}/chat/completions" in page.evaluate("navigator.clipboard.readText()")

    row = page.locator("table.keys tbody tr").first
    expect(row).to_contain_text("60 requests/min · 100,000 tokens/min")
    expect(row).to_contain_text("0 requests · 0 tokens")
    called = page.request.post(
        f"{base}/chat/completions",
        data={"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert called.ok
    reload_until_contains(page, row, "1 request ·")
    reload_until_contains(page, row, " UTC")  # last used: stamped by the same usage writer
    expect(row).not_to_contain_text("default")
    # this month's figure is the request's, right away (issue 21 item 3); times say their zone
    cells = row.locator("td")
    expect(cells.nth(5)).to_have_text(re.compile(r"^[1-9][\d,]* tokens · 0\.0000 USD$"))
    expect(cells.nth(3)).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC$"))
    check_every_variant(page, "keys-with-snippets")
    page.get_by_role("link", name="Usage").click()
    expect(page.get_by_text(re.compile(r"This month: [1-9][\d,]* tokens"))).to_be_visible()
    context.close()

"""The usage page in Chromium (issue 13, item 6): per-model and per-key breakdowns after a chat
answer and an API call with a key made in the keys page, and the CSV downloads."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.e2e.a11y import check_every_variant
from tests.e2e.conftest import WAIT_MS
from tests.e2e.support import FakeStack, fake_stack, new_chat, new_context, send, sign_in
from tests.support.waiting import wait_for


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeStack]:
    yield from fake_stack(tmp_path_factory.mktemp("usage"))


@pytest.fixture
def member(browser: Browser, stack: FakeStack) -> Iterator[Page]:
    context = new_context(browser, accept_downloads=True)
    page = context.new_page()
    sign_in(page, stack.url, "eve")
    yield page
    context.close()


def reload_until_contains(page: Page, table: Locator, text: str) -> None:
    """Usage rows are written shortly after a request ends: reload until ``table`` shows
    ``text``."""

    def shown() -> bool:
        if text in table.inner_text():
            return True
        page.reload()
        return False

    wait_for(shown, lambda: f"{text!r} in {table.inner_text()!r}", WAIT_MS / 1000, every=0.3)


def download(page: Page, link: str) -> list[dict[str, str]]:
    with page.expect_download() as started:
        page.get_by_role("link", name=link, exact=True).click()
    path = started.value.path()
    return list(csv.DictReader(io.StringIO(Path(path).read_text(encoding="utf-8"))))


def test_per_model_and_per_key_breakdowns_and_csv(member: Page, stack: FakeStack) -> None:
    page = member
    new_chat(page)
    send(page, "count these words")
    expect(page.locator(".message.assistant.complete")).to_be_visible()
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("ci-bot")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key").inner_text()
    called = page.request.post(
        f"{stack.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {secret}"},
        data={"model": "other-model", "messages": [{"role": "user", "content": "one two"}]},
    )
    assert called.status == 200, called.text()

    page.get_by_role("link", name="Usage").click()
    by_model = page.get_by_role("region", name="Usage per model")
    by_key = page.get_by_role("region", name="Usage per key")
    reload_until_contains(page, by_model, "other-model")
    expect(by_model).to_contain_text("fake-model")
    reload_until_contains(page, by_key, "ci-bot")
    check_every_variant(page, "usage-with-rows")

    models = {row["group"] for row in download(page, "per model")}
    assert {"fake-model", "other-model"} <= models, models
    keys = download(page, "per key")
    assert any("ci-bot" in " ".join(row.values()) for row in keys), keys
    days = download(page, "per day")
    assert sum(int(row["requests"]) for row in days) >= 2, days

"""This month's spend on the pages (issue 21 item 3): right after a request, the keys page and the
usage page show the month's real tokens and cost, for holders with a budget (their counters,
what the budget enforces) and without one (the usage table); times carry their zone."""

from __future__ import annotations

import httpx

from switchboard.accounts.services import create_user
from switchboard.budgets.tables import Budget, ModelPrice
from tests.conftest import WebFactory, mint_key_in
from tests.support.live import LiveServer

PASSWORD = "pw-long-enough"  # pragma: allowlist secret


def ask(server: LiveServer, secret: str) -> None:
    response = httpx.post(
        f"{server.url}/v1/chat/completions",
        json={"model": "fake-model", "messages": [{"role": "user", "content": "a b c d"}]},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 200


async def saved(row: ModelPrice | Budget) -> None:
    await row.save()


def test_the_month_shows_tokens_and_cost_right_after_a_request(
    live_fake: LiveServer, web: WebFactory
) -> None:
    user = live_fake.run(create_user("moe", password=PASSWORD))
    plain = live_fake.run(mint_key_in(live_fake.app, "moe"))
    budgeted = live_fake.run(mint_key_in(live_fake.app, "moe"))
    budgets = live_fake.app.state.resources.budgets
    # one million tokens cost 2 000 000 USD: 11 tokens are 22.0000
    live_fake.run(saved(ModelPrice(model="fake-model", prompt_per_million=2e6,
                                   completion_per_million=2e6)))  # fmt: skip
    listed = live_fake.run(live_fake.app.state.resources.keys.list_for_user(int(user.id)))
    key_id = max(key["id"] for key in listed)
    live_fake.run(saved(Budget(kind="key", subject_id=key_id, tokens=1_000_000)))
    live_fake.run(budgets.load())
    ask(live_fake, plain)
    ask(live_fake, budgeted)
    live_fake.run(live_fake.app.state.resources.usage.flush())

    moe = web(live_fake.url)
    assert moe.sign_in("moe", PASSWORD).status_code == 303
    keys_page = moe.get("/keys").text
    # a key with no budget: from its usage rows; with one: its counter, what the budget enforces
    assert "<td>11 tokens · 22.0000 USD</td>" in keys_page
    assert "<td>11 tokens · 22.0000 USD of a budget of 1,000,000 tokens</td>" in keys_page
    assert " UTC" in keys_page  # "Last used" says its zone
    usage_page = moe.get("/usage").text
    assert "This month: 22 tokens · 44.0000 USD" in usage_page  # the account: both keys

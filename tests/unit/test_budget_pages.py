"""Admin > Budgets sets prices and budgets; the keys and usage pages show this month's spend;
the chat shows a refusal over budget in words."""

from __future__ import annotations

import re

import httpx

from switchboard.accounts.services import create_user
from tests.conftest import WebFactory, mint_key_in
from tests.support.live import LiveServer

CHAT = "/v1/chat/completions"
BODY = {"model": "fake-model", "messages": [{"role": "user", "content": "a b c"}], "max_tokens": 10}


def key_number(page: str) -> str:
    found = re.search(r'<span class="muted">#(\d+)</span>', page)
    assert found, page
    return found.group(1)


def test_admins_set_prices_and_budgets_and_everyone_sees_their_spend(
    live_fake: LiveServer, web: WebFactory
) -> None:
    boss_password = "pw-long-enough"  # pragma: allowlist secret
    live_fake.run(create_user("boss", password=boss_password, role="admin"))
    live_fake.run(create_user("kim", password="pw-long-enough"))  # pragma: allowlist secret
    secret = live_fake.run(mint_key_in(live_fake.app, "kim"))
    kim = web(live_fake.url)
    assert kim.sign_in("kim", "pw-long-enough").status_code == 303
    assert kim.get("/admin/budgets").status_code == 403  # admins only
    number = key_number(kim.get("/keys").text)

    boss = web(live_fake.url)
    assert boss.sign_in("boss", boss_password).status_code == 303
    price = {
        "model": "fake-model",
        "prompt_per_million": "1000000",
        "completion_per_million": "2000000",
    }
    page = boss.post("/admin/budgets/prices", price)
    assert page.status_code == 200
    assert "<td>fake-model</td><td>1000000.0</td><td>2000000.0</td>" in page.text
    bad = boss.post("/admin/budgets/prices", {"model": "x", "prompt_per_million": "cheap"})
    assert bad.status_code == 400
    assert "The prompt price is a number" in bad.text
    unknown = boss.post(
        "/admin/budgets/limits", {"kind": "user", "subject": "nobody", "tokens": "5"}
    )
    assert unknown.status_code == 400
    assert "No such user: nobody." in unknown.text
    saved = boss.post(
        "/admin/budgets/limits",
        {"kind": "key", "subject": f"#{number}", "money": "39", "tokens": ""},
    )
    assert saved.status_code == 200
    assert "Saved the budget." in saved.text
    boss.post("/admin/budgets/limits", {"kind": "user", "subject": "kim", "tokens": "1000"})

    headers = {"Authorization": f"Bearer {secret}"}
    answered = httpx.post(f"{live_fake.url}{CHAT}", json=BODY, headers=headers)
    assert answered.status_code == 200  # worst case 7 + 20 = 27 of 39; real cost 7 + 6 = 13
    refused = httpx.post(f"{live_fake.url}{CHAT}", json=BODY, headers=headers)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "insufficient_quota"

    listed = boss.get("/admin/budgets").text
    assert "13.0000 USD · 10 tokens" in listed
    keys_page = kim.get("/keys").text
    assert "10 tokens · 13.0000 USD of a budget of 39.00 USD" in keys_page
    usage_page = kim.get("/usage").text
    assert "This month: 10 tokens · 13.0000 USD of a budget of 1,000 tokens" in usage_page


def test_the_chat_says_in_words_when_a_budget_is_spent(
    live_fake: LiveServer, web: WebFactory
) -> None:
    from switchboard.budgets import catalog

    user = live_fake.run(create_user("bea", password="pw-long-enough"))  # pragma: allowlist secret

    async def small_budget() -> None:
        await catalog.set_budget("user", int(user.id), "", "50")
        await live_fake.app.state.resources.budgets.load()

    live_fake.run(small_budget())
    bea = web(live_fake.url)
    assert bea.sign_in("bea", "pw-long-enough").status_code == 303
    conversation = bea.new_conversation()
    sent = bea.post(f"/chat/{conversation}/messages", {"content": "hello"}, htmx=True)
    stream = re.search(r'sse-connect="([^"]+/stream)"', sent.text)
    assert stream is not None, sent.text
    _, done = bea.stream_events(stream.group(1))[-1]
    assert "You exceeded your current quota" in done  # no max_tokens: the worst case is large
    assert "monthly budget remain" in done
    assert "The budget renews on" in done
    assert 'role="alert"' in done


def test_the_users_page_links_each_users_budgets_and_budgets_can_be_removed(
    live_fake: LiveServer, web: WebFactory
) -> None:
    password = "pw-long-enough"  # pragma: allowlist secret
    live_fake.run(create_user("boss", password=password, role="admin"))
    kim_user = live_fake.run(create_user("kim", password=password))
    secret = live_fake.run(mint_key_in(live_fake.app, "kim"))
    boss, kim = web(live_fake.url), web(live_fake.url)
    assert boss.sign_in("boss", password).status_code == 303
    assert kim.sign_in("kim", password).status_code == 303
    number = key_number(kim.get("/keys").text)
    users = boss.get("/admin/users").text
    assert 'href="/admin/budgets?user=kim"' in users
    for form in (
        {"kind": "user", "subject": "kim", "tokens": "5"},
        {"kind": "key", "subject": number, "money": "40"},
        {"kind": "user", "subject": "boss", "tokens": "99"},
    ):
        assert boss.post("/admin/budgets/limits", form).status_code == 200
    headers = {"Authorization": f"Bearer {secret}"}
    assert httpx.post(f"{live_fake.url}{CHAT}", json=BODY, headers=headers).status_code == 429

    kims = boss.get("/admin/budgets?user=kim")
    assert kims.status_code == 200
    assert "Budgets of kim" in kims.text
    assert "<td>user kim</td>" in kims.text
    assert f"<td>key {secret[:10]}" in kims.text  # her key's budget too
    assert "user boss" not in kims.text  # only hers
    assert 'name="subject" required maxlength="64" value="kim"' in kims.text  # a new one: hers
    assert 'hx-post="/admin/budgets/limits/remove"' in kims.text
    assert 'name="_csrf_token"' in kims.text
    missing = boss.get("/admin/budgets?user=nobody")
    assert missing.status_code == 404
    assert "No such user: nobody." in missing.text

    remove = {"kind": "user", "subject_id": str(kim_user.id)}
    assert kim.post("/admin/budgets/limits/remove", remove).status_code == 403  # admins only
    assert boss.http.post("/admin/budgets/limits/remove", data=remove).status_code == 403  # CSRF
    removed = boss.post("/admin/budgets/limits/remove", remove, htmx=True)
    assert removed.status_code == 200
    assert "Removed the budget of user kim." in removed.text
    assert "<td>user kim</td>" not in removed.text
    assert "<html" not in removed.text  # the fragment htmx swaps in
    assert httpx.post(f"{live_fake.url}{CHAT}", json=BODY, headers=headers).status_code == 200
    again = boss.post("/admin/budgets/limits/remove", remove, htmx=True)
    assert again.status_code == 404
    assert "That budget was already removed." in again.text
    for bad in (
        {"kind": "user", "subject_id": "abc"},
        {"kind": "team", "subject_id": "1"},
        {"kind": "key", "subject_id": str(2**40)},
    ):
        refused = boss.post("/admin/budgets/limits/remove", bad, htmx=True)
        assert refused.status_code == 400, bad
        assert "No such budget." in refused.text

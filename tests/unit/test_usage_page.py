"""The usage page: a member sees their own days as an SVG chart; an admin also sees everyone."""

from __future__ import annotations

import datetime as dt

import httpx

from switchboard.accounts.services import Role, create_user
from switchboard.usage.chart import bar_chart
from tests.conftest import WebFactory, mint_key_in
from tests.support.live import LiveServer

PASSWORD = "pw-long-enough"  # pragma: allowlist secret


def test_the_chart_is_accessible_svg() -> None:
    today = dt.date(2026, 11, 24)
    svg = bar_chart([(today - dt.timedelta(days=1), 0), (today, 40)], "tokens")
    assert svg.startswith("<svg")
    assert 'role="img"' in svg
    assert "2026-11-24: 40 tokens" in svg
    assert 'aria-label="tokens per day, 2026-11-23 to 2026-11-24, peak 40"' in svg
    assert "No tokens" in bar_chart([], "tokens")


def test_members_see_their_usage_and_admins_everyones(
    live_fake: LiveServer, web: WebFactory
) -> None:
    people: tuple[tuple[str, Role], ...] = (("mia", "member"), ("root", "admin"))
    for name, role in people:
        live_fake.run(create_user(name, password=PASSWORD, role=role))
    secret = live_fake.run(mint_key_in(live_fake.app, "mia"))
    for _ in range(3):
        response = httpx.post(
            f"{live_fake.url}/v1/chat/completions",
            json={"model": "fake-model", "messages": [{"role": "user", "content": "a b c d"}]},
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert response.status_code == 200
    live_fake.run(live_fake.app.state.resources.usage.flush())

    mia = web(live_fake.url)
    assert mia.sign_in("mia", "pw-long-enough").status_code == 303
    page = mia.get("/usage").text
    assert "<strong>3</strong> requests, <strong>33</strong> tokens" in page
    assert ": 33 tokens</title>" in page
    assert "Per user" not in page
    assert "3 requests · 33 tokens" in mia.get("/keys").text  # the keys page shows usage too

    root = web(live_fake.url)
    assert root.sign_in("root", "pw-long-enough").status_code == 303
    admin_page = root.get("/usage").text
    assert "Per user" in admin_page
    assert "<td>mia</td><td>3</td><td>33</td>" in admin_page
    assert "(mia)</td><td>3</td>" in admin_page


def test_the_page_breaks_usage_down_per_model_and_key_with_a_csv_download(
    live_fake: LiveServer, web: WebFactory
) -> None:
    live_fake.run(create_user("ivy", password="pw-long-enough"))  # pragma: allowlist secret
    secret = live_fake.run(mint_key_in(live_fake.app, "ivy"))
    for model in ("fake-model", "fake-model", "=HYPERLINK()"):
        httpx.post(
            f"{live_fake.url}/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "a b"}]},
            headers={"Authorization": f"Bearer {secret}"},
        )
    live_fake.run(live_fake.app.state.resources.usage.flush())
    ivy = web(live_fake.url)
    assert ivy.sign_in("ivy", "pw-long-enough").status_code == 303
    page = ivy.get("/usage").text
    assert "Per model" in page
    assert "<td>fake-model</td><td>2</td><td>18</td>" in page
    assert "Per key" in page
    assert "…</td><td>3</td><td>18</td>" in page
    assert 'href="/usage/export.csv?group_by=model"' in page
    csv = ivy.get("/usage/export.csv?group_by=model")
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv.headers["content-disposition"]
    lines = csv.text.splitlines()
    assert lines[0].split(",") == [
        "group",
        "key_id",
        "requests",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "cache_hits",
        "errors",
    ]
    assert "fake-model,,2,14,4,18,0,0" in lines
    assert "'=HYPERLINK(),,1,0,0,0,0,1" in lines  # a spreadsheet does not run it
    by_key = ivy.get("/usage/export.csv?group_by=key").text.splitlines()
    assert len(by_key) == 2
    assert by_key[1].startswith("sk-sb-")
    bad = ivy.get("/usage/export.csv?group_by=week")
    assert bad.status_code == 400
    assert "text/html" in bad.headers["content-type"]  # a page, not a 500

"""The usage page: a member sees their own days as an SVG chart; an admin also sees everyone."""

from __future__ import annotations

import datetime as dt

import httpx

from switchboard.accounts.services import create_user
from switchboard.usage.chart import bar_chart
from tests.conftest import WebFactory, mint_key_in
from tests.support.live import LiveServer


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
    for name, role in (("mia", "member"), ("root", "admin")):
        live_fake.run(create_user(name, password="pw-long-enough", role=role))  # type: ignore[arg-type]
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

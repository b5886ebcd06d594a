"""The keys page tells a client everything it needs (issue 26): the full base URL (the public URL
when one is set, else the request's), ready-to-paste snippets, each key's effective limits as
numbers, and counts with the right plural."""

from __future__ import annotations

import httpx

from switchboard.accounts.services import create_user
from switchboard.keys.controllers import api_base_url
from tests.conftest import WebFactory, mint_key_in
from tests.support.live import LiveServer

PASSWORD = "pw-long-enough"  # pragma: allowlist secret


def test_the_base_url_is_the_public_url_when_one_is_set() -> None:
    assert api_base_url("https://llm.example.com/", "http://10.0.0.5:8000/") == (
        "https://llm.example.com/v1"
    )
    assert api_base_url("https://example.com/llm", "http://x/") == "https://example.com/llm/v1"
    assert api_base_url("", "http://127.0.0.1:8000/") == "http://127.0.0.1:8000/v1"


def test_the_page_shows_the_base_url_snippets_limits_and_plurals(
    live_fake: LiveServer, web: WebFactory
) -> None:
    live_fake.run(create_user("kim", password=PASSWORD))
    secret = live_fake.run(mint_key_in(live_fake.app, "kim"))
    live_fake.run(mint_key_in(live_fake.app, "kim", rpm=5, tpm=2_000))
    response = httpx.post(
        f"{live_fake.url}/v1/chat/completions",
        json={"model": "fake-model", "messages": [{"role": "user", "content": "a b c d"}]},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 200
    live_fake.run(live_fake.app.state.resources.usage.flush())

    kim = web(live_fake.url)
    assert kim.sign_in("kim", PASSWORD).status_code == 303
    page = kim.get("/keys").text
    base = f"{live_fake.url}/v1"
    assert f'<code id="base-url">{base}</code>' in page
    assert 'data-copy="#base-url"' in page
    assert f"curl {base}/chat/completions" in page
    assert f'base_url="{base}"' in page  # Python's openai SDK
    assert f'baseURL: "{base}"' in page  # Node's
    assert "1 request · 11 tokens" in page
    assert "1 requests" not in page
    assert "60 requests/min · 100,000 tokens/min" in page  # the account's, as numbers
    assert "5 requests/min · 2,000 tokens/min" in page  # the key's own
    assert "default" not in page
    fragment = kim.get("/keys", htmx=True)  # the block alone, as after creating or revoking
    assert fragment.status_code == 200
    assert "1 request · 11 tokens" in fragment.text
    assert "<strong>1</strong> request, <strong>11</strong> tokens" in kim.get("/usage").text

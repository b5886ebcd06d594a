"""The /v1 API with the official openai SDK, in front of the real vLLM CPU server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from switchboard.usage.tables import UsageRecord
from tests.conftest import mint_key_in
from tests.integration.conftest import MODEL, AppFactory
from tests.support.live import LiveServer

ApiFactory = Callable[..., tuple[LiveServer, openai.OpenAI]]


@pytest.fixture
def api(live_app: AppFactory) -> ApiFactory:
    """An app plus an SDK client holding a fresh key (limits overridable)."""

    def start(
        rpm: int = 1000, tpm: int = 1_000_000, **settings: Any
    ) -> tuple[LiveServer, openai.OpenAI]:
        app = live_app(**settings)
        secret = app.run(mint_key_in(app.app, "sdk-user", rpm=rpm, tpm=tpm))
        return app, openai.OpenAI(base_url=f"{app.url}/v1", api_key=secret, max_retries=0)

    return start


def usage_rows(app: LiveServer) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        await app.app.state.resources.usage.flush()
        rows: list[dict[str, Any]] = await UsageRecord.select().order_by(UsageRecord.id)
        return rows

    return app.run(read())


def test_chat_stream_completion_and_models_with_usage_rows(api: ApiFactory) -> None:
    app, client = api()
    assert [m.id for m in client.models.list()] == [MODEL]
    assert client.models.retrieve(MODEL).id == MODEL

    chat = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Name a fruit."}], max_tokens=12
    )
    assert chat.choices[0].message.content
    assert chat.usage is not None

    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Count to five."}],
        max_tokens=16,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    streamed_usage = chunks[-1].usage
    assert streamed_usage is not None
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) >= 3

    text = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=8)
    assert text.choices[0].text
    assert text.usage is not None

    rows = usage_rows(app)
    assert [(r["prompt_tokens"], r["completion_tokens"], r["stream"]) for r in rows] == [
        (chat.usage.prompt_tokens, chat.usage.completion_tokens, False),
        (streamed_usage.prompt_tokens, streamed_usage.completion_tokens, True),
        (text.usage.prompt_tokens, text.usage.completion_tokens, False),
    ]
    assert all(r["status"] == 200 and r["model"] == MODEL for r in rows)
    assert rows[1]["ttft_ms"] is not None
    assert 0 < rows[1]["ttft_ms"] <= rows[1]["latency_ms"]


def test_errors_in_openai_shape(api: ApiFactory) -> None:
    app, client = api()
    bad_key = openai.OpenAI(base_url=f"{app.url}/v1", api_key="sk-sb-nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as unauthorized:
        bad_key.models.list()
    assert unauthorized.value.code == "invalid_api_key"
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "x"}])
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as invalid:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x"}], temperature=5
        )
    assert isinstance(invalid.value.body, dict)
    assert invalid.value.body["param"] == "temperature"
    too_long = "word " * 3000
    with pytest.raises(openai.BadRequestError) as context:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": too_long}], max_tokens=4
        )
    assert "context length" in context.value.message


def test_429_with_openai_headers(api: ApiFactory) -> None:
    _, client = api(rpm=2)
    for _ in range(2):
        ok = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2
        )
        assert ok.headers["x-ratelimit-limit-requests"] == "2"
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2
        )
    headers = limited.value.response.headers
    assert limited.value.code == "rate_limit_exceeded"
    assert int(headers["retry-after"]) >= 1
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"].endswith("s")
    assert "x-ratelimit-remaining-tokens" in headers


def test_a_repeated_deterministic_request_is_answered_from_the_cache(api: ApiFactory) -> None:
    app, client = api()
    say_yes: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say yes."}]
    create = client.chat.completions.with_raw_response.create
    first = create(model=MODEL, messages=say_yes, temperature=0, max_tokens=8)
    second = create(model=MODEL, messages=say_yes, temperature=0, max_tokens=8)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    rows = usage_rows(app)
    assert [r["cache_hit"] for r in rows] == [False, True]
    assert rows[0]["total_tokens"] == rows[1]["total_tokens"] > 0


def test_exactly_n_of_5n_concurrent_requests_pass(api: ApiFactory) -> None:
    app, client = api(rpm=3)
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    headers = {"Authorization": f"Bearer {client.api_key}"}

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=app.url, timeout=120) as http:
            responses = await asyncio.gather(
                *(http.post("/v1/chat/completions", json=body, headers=headers) for _ in range(15))
            )
        return sorted(r.status_code for r in responses)

    assert asyncio.run(burst()) == [200] * 3 + [429] * 12

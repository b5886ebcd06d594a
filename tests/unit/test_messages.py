"""Anthropic's Messages API (issue 25, item 3) against the fake model server, through the
``anthropic`` SDK: create and stream with Anthropic's event types, count_tokens, keys as
``x-api-key`` or Bearer, errors in Anthropic's shape, limits, budgets and usage rows as chat."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import MessageParam, TextBlock

from switchboard.usage.tables import UsageRecord
from tests.conftest import mint_key_in
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer

MODEL = "fake-model"
SAY: list[MessageParam] = [{"role": "user", "content": "one two three"}]


@pytest.fixture
def secret(live_fake: LiveServer) -> str:
    return live_fake.run(mint_key_in(live_fake.app, "claude-fan"))


@pytest.fixture
def sdk(live_fake: LiveServer, secret: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=live_fake.url, api_key=secret, max_retries=0) as client:
        yield client


def rows(live: LiveServer) -> list[dict[str, Any]]:
    live.run(live.app.state.resources.usage.flush())
    query = UsageRecord.select(
        UsageRecord.status,
        UsageRecord.stream,
        UsageRecord.prompt_tokens,
        UsageRecord.completion_tokens,
    ).order_by(UsageRecord.id)
    return list(live.run(query.run()))


def test_create_is_relayed_and_accounted(
    sdk: anthropic.Anthropic, live_fake: LiveServer, fake_upstream: FakeUpstream
) -> None:
    message = sdk.messages.create(
        model=MODEL, max_tokens=50, messages=SAY, system="Be brief.", metadata={"user_id": "u-1"}
    )
    assert isinstance(message.content[0], TextBlock)
    assert message.content[0].text == "one two three"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (7, 3)
    sent = fake_upstream.requests[-1]
    assert (sent["system"], sent["max_tokens"]) == ("Be brief.", 50)
    assert "metadata" not in sent  # no meaning here: dropped
    assert [(r["status"], r["prompt_tokens"], r["completion_tokens"]) for r in rows(live_fake)] == [
        (200, 7, 3)
    ]


def test_streaming_has_anthropics_event_types(
    sdk: anthropic.Anthropic, live_fake: LiveServer
) -> None:
    with sdk.messages.stream(model=MODEL, max_tokens=50, messages=SAY) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start"
    assert "content_block_delta" in kinds
    assert isinstance(final.content[0], TextBlock)
    assert final.content[0].text == "one two three"
    assert final.usage.output_tokens == 3
    assert [
        (r["status"], r["stream"], r["prompt_tokens"], r["completion_tokens"])
        for r in rows(live_fake)
    ] == [(200, True, 7, 3)]


def test_count_tokens(sdk: anthropic.Anthropic, fake_upstream: FakeUpstream) -> None:
    counted = sdk.messages.count_tokens(model=MODEL, messages=SAY)
    assert counted.input_tokens == 7
    assert fake_upstream.requests == []  # nothing generated


def test_a_bearer_key_works_too_and_a_missing_one_is_anthropics_401(
    live_fake: LiveServer, secret: str
) -> None:
    body = {"model": MODEL, "max_tokens": 10, "messages": SAY}
    with httpx.Client(base_url=live_fake.url, timeout=30) as http:
        bearer = http.post("/v1/messages", json=body, headers={"Authorization": f"Bearer {secret}"})
        assert bearer.status_code == 200
        missing = http.post("/v1/messages", json=body)
    assert missing.status_code == 401
    error = missing.json()
    assert error["type"] == "error"
    assert error["error"]["type"] == "authentication_error"
    assert error["request_id"] == missing.headers["x-request-id"]


@pytest.mark.parametrize(
    ("extra", "kind"),
    [
        ({"max_tokens": 0}, "invalid_request_error"),
        ({"temperature": 1.5}, "invalid_request_error"),
        (
            {"tools": [{"type": "web_search_20250305", "name": "web_search"}]},
            "invalid_request_error",
        ),
        (
            {"mcp_servers": [{"type": "url", "url": "https://x", "name": "x"}]},
            "invalid_request_error",
        ),
        ({"model": "claude-nope"}, "not_found_error"),
    ],
)
def test_errors_come_in_anthropics_shape(
    sdk: anthropic.Anthropic, fake_upstream: FakeUpstream, extra: dict[str, Any], kind: str
) -> None:
    arguments: dict[str, Any] = {"model": MODEL, "max_tokens": 10, "messages": SAY}
    named = {key: value for key, value in extra.items() if key in arguments}
    with pytest.raises(anthropic.APIStatusError) as refused:
        sdk.messages.create(
            **{**arguments, **named},
            extra_body={key: value for key, value in extra.items() if key not in named},
        )
    assert isinstance(refused.value.body, dict)
    assert refused.value.body["error"]["type"] == kind
    assert fake_upstream.requests == []


def test_limits_and_budgets_hold_as_for_chat(live_fake: LiveServer) -> None:
    limited = live_fake.run(mint_key_in(live_fake.app, "one-a-minute", rpm=1))
    body = {"model": MODEL, "max_tokens": 10, "messages": SAY}
    with httpx.Client(base_url=live_fake.url, headers={"x-api-key": limited}, timeout=30) as http:
        assert http.post("/v1/messages", json=body).status_code == 200
        refused = http.post("/v1/messages", json=body)
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert "retry-after" in refused.headers


def test_a_budget_counts_the_prompt_with_the_servers_count_tokens(
    live_fake: LiveServer, secret: str, fake_upstream: FakeUpstream
) -> None:
    from switchboard.budgets import catalog
    from switchboard.keys.tables import ApiKey

    async def set_budget() -> None:
        key = await ApiKey.select(ApiKey.id).first()
        assert key is not None
        await catalog.set_budget("key", int(key["id"]), "", "12")
        await live_fake.app.state.resources.budgets.load()

    live_fake.run(set_budget())
    body = {"model": MODEL, "max_tokens": 4, "messages": SAY}
    with httpx.Client(base_url=live_fake.url, headers={"x-api-key": secret}, timeout=30) as http:
        assert http.post("/v1/messages", json=body).status_code == 200  # 7 + 4 of 12
        refused = http.post("/v1/messages", json=body)  # 10 spent + 11 > 12
    assert fake_upstream.tokenized[0]["messages"] == SAY
    assert refused.status_code == 429
    assert "7 in the prompt, up to 4 generated" in refused.json()["error"]["message"]

"""Budget reservations are an upper bound of what the engine will count (issue 24, finding 2):
the prompt as the model server's ``/tokenize`` counts it (same tokenizer, chat template, tools),
or a byte bound when no server can say; plus every token the request may generate."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from switchboard.gateway import shaping
from switchboard.gateway.parsing import parse_request
from switchboard.usage.tables import UsageRecord
from tests.support.fake_upstream import FakeUpstream
from tests.unit.test_budgets import BODY, CHAT, budget

TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


def counted(method: str) -> float:
    return REGISTRY.get_sample_value("switchboard_prompt_counts_total", {"method": method}) or 0.0


async def test_the_prompt_is_counted_by_the_model_servers_tokenizer(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    await budget(client, "key", tokens="1000")
    before = counted("tokenizer")
    body = {**BODY, "tools": TOOLS, "chat_template_kwargs": {"enable_thinking": False}}
    assert (await client.post(CHAT, json=body)).status_code == 200
    assert fake_upstream.tokenized == [
        {
            "model": "fake-model",
            "messages": BODY["messages"],
            "tools": TOOLS,
            "chat_template_kwargs": {"enable_thinking": False},
        }
    ]
    assert counted("tokenizer") == before + 1


async def test_without_a_budget_nothing_is_counted(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    assert (await client.post(CHAT, json=BODY)).status_code == 200
    assert fake_upstream.tokenized == []


async def test_the_refusal_states_the_counted_prompt(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    await budget(client, "key", tokens="100")
    fake_upstream.prompt_tokens = 95  # a long prompt, as the tokenizer counts it
    refused = await client.post(CHAT, json=BODY)
    assert refused.status_code == 429
    assert (
        "use up to 105 tokens (95 in the prompt, up to 10 generated)"
        in (refused.json()["error"]["message"])
    )
    assert fake_upstream.requests == []


async def test_without_max_tokens_the_reservation_is_what_fits_in_the_context(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    """The fake's context is 2,048 tokens: the engine cannot generate past it."""
    await budget(client, "key", tokens="2047")
    body = {key: value for key, value in BODY.items() if key != "max_tokens"}
    refused = await client.post(CHAT, json=body)
    assert refused.status_code == 429
    assert (
        "use up to 2,048 tokens (7 in the prompt, up to 2,041 generated)"
        in (refused.json()["error"]["message"])
    )


async def test_when_no_server_can_count_a_byte_bound_is_reserved(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    await budget(client, "key", tokens="100000")
    fake_upstream.tokenize_status = 404  # a server or router without /tokenize
    before = counted("bound")
    assert (await client.post(CHAT, json=BODY)).status_code == 200
    assert counted("bound") == before + 1


async def test_an_unknown_model_is_refused_before_counting_and_leaves_a_row(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    await budget(client, "key", tokens="1000")
    response = await client.post(CHAT, json={**BODY, "model": "gpt-x"})
    assert response.status_code == 404
    assert "x-ratelimit-remaining-tokens" in response.headers
    assert fake_upstream.tokenized == []
    await client.app.state.resources.usage.flush()
    assert [r["status"] for r in await UsageRecord.select(UsageRecord.status)] == [404]


@pytest.mark.parametrize(
    "text",
    [
        "Tell me one short fact about the sea.",
        "海山川雨雲風花鳥月星" * 40,
        "🙂" * 100,
        "a" * 3000,
    ],
)
def test_the_byte_bound_exceeds_any_byte_level_count(text: str) -> None:
    """A byte-level BPE token covers at least one byte: the UTF-8 size bounds the count."""
    chat = parse_request(
        "chat", msgspec.json.encode({"model": "m", "messages": [{"role": "user", "content": text}]})
    )
    assert shaping.CHAT.prompt_bound(chat.body) >= len(text.encode())
    batch = parse_request("completion", msgspec.json.encode({"model": "m", "prompt": [text] * 2}))
    assert shaping.COMPLETION.prompt_bound(batch.body) >= 2 * len(text.encode())

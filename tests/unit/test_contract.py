"""The request contract (issue 25, item 1): every field OpenAI accepts is accepted and checked,
then relayed, converted (legacy forms), dropped (no meaning here) or refused with a 400 naming
it; engine internals stay refused, each named; several problems are named in one answer."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from switchboard.gateway.parsing import parse_request
from switchboard.gateway.shaping import COMPLETION
from tests.support.fake_upstream import FakeUpstream
from tests.unit.test_gateway import CHAT, chat

COMPLETIONS = "/v1/completions"
DROPPED = {
    "store": False,
    "metadata": {"team": "search", "run": "42"},
    "service_tier": "auto",
    "prompt_cache_key": "user-123",
    "prompt_cache_retention": "24h",
    "safety_identifier": "hashed-user",
    "verbosity": "low",
    "prediction": {"type": "content", "content": "hello"},
    "modalities": ["text"],
}


async def test_openais_fields_without_meaning_here_are_accepted_and_dropped(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    body = chat(
        **DROPPED, stream=True, stream_options={"include_usage": True, "include_obfuscation": False}
    )
    response = await client.post(CHAT, json=body)
    assert response.status_code == 200, response.text
    sent = fake_upstream.requests[-1]
    assert not set(DROPPED) & set(sent)
    assert "include_obfuscation" not in sent["stream_options"]


async def test_supported_fields_are_relayed(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    relayed = {
        "reasoning_effort": "low",
        "seed": -42,
        "user": "u1",
        "parallel_tool_calls": False,
        "logprobs": True,
        "top_logprobs": 2,
        "frequency_penalty": 0.5,
    }
    response = await client.post(CHAT, json=chat(**relayed))
    assert response.status_code == 200, response.text
    sent = fake_upstream.requests[-1]
    assert {name: sent[name] for name in relayed} == relayed


async def test_multi_part_content_is_relayed(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    parts = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    body = {"model": "fake-model", "messages": [{"role": "user", "content": parts}]}
    response = await client.post(CHAT, json=body)
    assert response.status_code == 200, response.text
    assert fake_upstream.requests[-1]["messages"][0]["content"] == parts


async def test_legacy_functions_become_tools(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    function = {"name": "lookup", "parameters": {"type": "object", "properties": {}}}
    messages = [
        {"role": "user", "content": "find it"},
        {
            "role": "assistant",
            "content": None,
            "function_call": {"name": "lookup", "arguments": "{}"},
        },
        {"role": "function", "name": "lookup", "content": "found"},
    ]
    body = {
        "model": "fake-model",
        "messages": messages,
        "functions": [function],
        "function_call": {"name": "lookup"},
    }
    response = await client.post(CHAT, json=body)
    assert response.status_code == 200, response.text
    sent = fake_upstream.requests[-1]
    assert sent["tools"] == [{"type": "function", "function": function}]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "lookup"}}
    assert "functions" not in sent
    assert "function_call" not in sent
    assert sent["messages"][1]["tool_calls"][0]["function"]["name"] == "lookup"
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": "lookup", "content": "found"}


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        (
            {"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}},
            "modalities",
        ),
        ({"web_search_options": {}}, "web_search_options"),
        ({"moderation": {"policy": {}}}, "moderation"),
        ({"tools": [{"type": "custom", "custom": {"name": "grammar"}}]}, "tools[0].type"),
        (
            {"tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "auto"}}},
            "tool_choice",
        ),
    ],
)
async def test_what_no_self_hosted_engine_does_is_refused_by_name(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream, extra: dict[str, Any], param: str
) -> None:
    response = await client.post(CHAT, json=chat(**extra))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (param, "unsupported_parameter")
    assert fake_upstream.requests == []


@pytest.mark.parametrize(
    "internal",
    [
        "kv_transfer_params",
        "vllm_xargs",
        "priority",
        "request_id",
        "chat_template",
        "logits_processors",
    ],
)
async def test_engine_internals_stay_refused_by_name(
    client: AsyncTestClient[Any], internal: str
) -> None:
    response = await client.post(CHAT, json=chat(**{internal: {}}))
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (internal, "unknown_parameter")


async def test_every_problem_is_named_in_one_answer(client: AsyncTestClient[Any]) -> None:
    body = chat(temperature=7, made_up=1, top_p="high", priority=3)
    response = await client.post(CHAT, json=body)
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    for name in ("temperature", "made_up", "top_p", "priority"):
        assert f"`{name}`" in message, message
    assert "4 problems" in message


async def test_completions_take_best_of_up_to_n_and_token_prompts(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    ok = await client.post(
        COMPLETIONS, json={"model": "fake-model", "prompt": "a b", "n": 2, "best_of": 2}
    )
    assert ok.status_code == 200, ok.text
    assert "best_of" not in fake_upstream.requests[-1]
    refused = await client.post(
        COMPLETIONS, json={"model": "fake-model", "prompt": "a", "best_of": 3}
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "best_of"
    for prompt in ([1, 2, 3], [[1, 2], [3]]):
        tokens = await client.post(COMPLETIONS, json={"model": "fake-model", "prompt": prompt})
        assert tokens.status_code == 200, tokens.text
        assert fake_upstream.requests[-1]["prompt"] == prompt
    for bad in ([1, "a"], [[1], []], [-1], [[2**40]], ["x"] * 17):
        invalid = await client.post(COMPLETIONS, json={"model": "fake-model", "prompt": bad})
        assert invalid.status_code == 400, bad
        assert invalid.json()["error"]["param"] == "prompt"


def test_limits_and_budgets_count_every_choice_and_candidate() -> None:
    raw = b'{"model": "m", "prompt": ["a", "b"], "max_tokens": 30, "n": 2, "best_of": 2}'
    parsed = parse_request("completion", raw)
    body = COMPLETION.upstream_body(parsed, 100, False)
    cost = COMPLETION.cost(parsed, body, 100)
    assert (cost.per_choice, cost.choices, cost.prompts) == (30, 2, 2)
    assert cost.estimate >= 30 * 2 * 2

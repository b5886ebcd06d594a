"""Tool calling through the gateway with the openai SDK, against a fake upstream that answers
as vLLM's hermes tool parser does (tests/support/fake_tools.py): relayed unchanged, cached and
accounted for like any completion."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import yaml
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam

from switchboard.usage.tables import UsageRecord
from tests.conftest import REPO_ROOT, mint_key_in
from tests.support import fake_tools
from tests.support.fake_upstream import MODEL, FakeUpstream
from tests.support.live import LiveServer

WEATHER: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
    },
}
TIME: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object"}},
}


def sdk(app: LiveServer) -> tuple[openai.OpenAI, str]:
    secret = app.run(mint_key_in(app.app, "agent"))
    return openai.OpenAI(base_url=f"{app.url}/v1", api_key=secret, max_retries=0), secret


def usage_rows(app: LiveServer) -> list[dict[str, Any]]:
    async def flushed() -> list[dict[str, Any]]:
        await app.app.state.resources.usage.flush()
        return await UsageRecord.select().order_by(UsageRecord.id)

    return app.run(flushed())


def test_agent_loop_calls_a_tool_and_answers_with_its_result(
    live_fake: LiveServer, fake_upstream: FakeUpstream
) -> None:
    client, _ = sdk(live_fake)
    with client:
        _agent_loop(client, fake_upstream)


def _agent_loop(client: openai.OpenAI, fake_upstream: FakeUpstream) -> None:
    messages: list[Any] = [{"role": "user", "content": "Paris"}]
    first = client.chat.completions.create(
        model=MODEL,
        messages=messages,
        tools=[WEATHER],
        tool_choice="auto",
        parallel_tool_calls=False,
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls
    assert calls[0].type == "function"
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == {"query": "Paris"}
    sent = fake_upstream.requests[-1]
    assert (sent["tools"], sent["tool_choice"], sent["parallel_tool_calls"]) == (
        [WEATHER],
        "auto",
        False,
    )
    # The SDK's own message object goes back as it came (with vLLM's null fields).
    messages.append(choice.message)
    messages.append({"role": "tool", "tool_call_id": calls[0].id, "content": "sunny"})
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "Tools said: sunny"
    relayed = fake_upstream.requests[-1]["messages"][1]
    assert relayed["tool_calls"] == [call.model_dump() for call in calls]
    assert "refusal" not in relayed  # null fields are not relayed to vLLM


def test_streamed_tool_call_deltas_are_relayed_unchanged_and_accounted(
    live_fake: LiveServer, fake_upstream: FakeUpstream
) -> None:
    client, _ = sdk(live_fake)
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Oslo"}]
    tools = [WEATHER, TIME]
    body = {"model": MODEL, "messages": messages, "tools": tools}
    with client:
        stream = client.chat.completions.create(
            model=MODEL,
            messages=messages,
            tools=tools,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    received = [
        c.choices[0].delta.model_dump(exclude_none=True, include={"tool_calls"})
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
    ]
    expected = fake_tools.deltas(fake_tools.planned_calls(body))
    assert received == expected  # parallel calls: index 0 then index 1, arguments in pieces
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "tool_calls"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(expected)
    row = usage_rows(live_fake)[-1]
    assert (row["completion_tokens"], row["status"], row["stream"]) == (len(expected), 200, True)
    assert row["ttft_ms"] is not None  # a tool-call delta is the model's first output


def test_a_cached_tool_call_stream_replays_the_same_deltas(
    live_fake: LiveServer, fake_upstream: FakeUpstream
) -> None:
    _, secret = sdk(live_fake)
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Rome"}],
        "tools": [WEATHER],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "temperature": 0,
        "stream": True,
    }
    headers = {"Authorization": f"Bearer {secret}"}
    url = f"{live_fake.url}/v1/chat/completions"
    first = httpx.post(url, json=body, headers=headers, timeout=30)
    again = httpx.post(url, json=body, headers=headers, timeout=30)
    assert (first.headers["x-cache"], again.headers["x-cache"]) == ("miss", "hit")
    assert again.text == first.text
    assert '"finish_reason":"tool_calls"' in first.text.replace(" ", "")
    assert len(fake_upstream.requests) == 1
    rows = usage_rows(live_fake)
    assert [(r["cache_hit"], r["completion_tokens"]) for r in rows][-2:] == [
        (False, rows[-2]["completion_tokens"]),
        (True, rows[-2]["completion_tokens"]),
    ]
    assert rows[-1]["completion_tokens"] > 0


def test_production_vllm_enables_the_hermes_tool_parser() -> None:
    config = yaml.safe_load(Path(REPO_ROOT, "model-server/gpu/vllm.yaml").read_text())
    assert config["model"].startswith("Qwen/Qwen2.5")
    assert config["enable-auto-tool-choice"] is True
    assert config["tool-call-parser"] == "hermes"

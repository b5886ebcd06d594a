"""Hostile `/v1` bodies (issue 24, findings 3 and 5): engine values bounded as vLLM's own schema
allows, template overrides refused however they are nested, and bodies that used to reach a 500
(deep nesting, invalid UTF-8) answered with a 400 in OpenAI's shape."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.support.fake_upstream import FakeUpstream
from tests.unit.test_gateway import CHAT, chat

COMPLETIONS = "/v1/completions"


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"top_k": 10**30}, "top_k"),
        ({"top_k": 2**31}, "top_k"),
        ({"top_k": -2}, "top_k"),
        ({"stop_token_ids": [2**63]}, "stop_token_ids[0]"),
        ({"stop_token_ids": [2**31]}, "stop_token_ids[0]"),
        ({"stop_token_ids": list(range(2000))}, "stop_token_ids"),
        ({"logit_bias": {"abc": 1}}, "logit_bias"),
        ({"logit_bias": {"-1": 1}}, "logit_bias"),
        ({"logit_bias": {str(2**40): 1}}, "logit_bias"),
        ({"min_tokens": 2**40}, "min_tokens"),
        ({"bad_words": ["x"] * 2000}, "bad_words"),
        ({"chat_template_kwargs": {"chat_template": "{{ 'owned' }}"}}, "chat_template_kwargs"),
        ({"chat_template_kwargs": {"tokenize": True}}, "chat_template_kwargs"),
        ({"chat_template_kwargs": {"add_generation_prompt": False}}, "chat_template_kwargs"),
        ({"chat_template_kwargs": {"enable_thinking": "yes"}}, "chat_template_kwargs"),
    ],
)
async def test_engine_values_out_of_range_are_400_naming_the_field(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream, extra: dict[str, Any], param: str
) -> None:
    response = await client.post(CHAT, json=chat(**extra))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"].startswith(param), error
    assert fake_upstream.requests == []  # nothing reached the model server


async def test_harmless_engine_values_are_relayed(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    extras = {
        "top_k": 40,
        "stop_token_ids": [2, 49152],
        "logit_bias": {"50256": -100, "7": 2.5},
        "chat_template_kwargs": {"enable_thinking": False},
    }
    response = await client.post(CHAT, json=chat(**extras))
    assert response.status_code == 200, response.text
    sent = fake_upstream.requests[-1]
    assert {name: sent[name] for name in extras} == extras


@pytest.mark.parametrize("depth", [70, 600, 1000, 5000])
@pytest.mark.parametrize("where", ["chat_template_kwargs", "tools", "response_format"])
async def test_deeply_nested_json_is_a_400(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream, depth: int, where: str
) -> None:
    deep = nested(depth)
    fields = {
        "chat_template_kwargs": f'"chat_template_kwargs": {{"enable_thinking": {deep}}}',
        "tools": '"tools": [{"type": "function", "function": {"name": "f", "parameters": '
        f'{{"x": {deep}}}}}}}]',
        "response_format": '"response_format": {"type": "json_schema", "json_schema": '
        f'{{"name": "n", "schema": {{"x": {deep}}}}}}}',
    }
    raw = (
        '{"model": "fake-model", "messages": [{"role": "user", "content": "hi"}], '
        + fields[where]
        + "}"
    )
    response = await client.post(CHAT, content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert fake_upstream.requests == []


async def test_reasonably_nested_schemas_are_relayed(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(20):  # an object 20 levels deep: real schemas stay far below the limit
        schema = {"type": "object", "properties": {"inner": schema}}
    body = chat(
        response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": schema}}
    )
    assert (await client.post(CHAT, json=body)).status_code == 200
    assert fake_upstream.requests[-1]["response_format"]["json_schema"]["schema"] == schema


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        (CHAT, b'{"model": "fake-model", "messages": [{"role": "user", "content": "\xff\xfe"}]}'),
        (COMPLETIONS, b'{"model": "fake-model", "prompt": "\xc3\x28"}'),
        (CHAT, b'{"model": "fake-\xed\xa0\x80"}'),
        (COMPLETIONS, b'{"model": "fake-\xed\xa0\x80"}'),
    ],
)
async def test_invalid_utf8_is_a_400(client: AsyncTestClient[Any], path: str, raw: bytes) -> None:
    response = await client.post(path, content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_json")
    assert "UTF-8" in error["message"]

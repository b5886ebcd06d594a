"""The /v1 surface against a fake upstream: shapes, relaying and every client mistake."""

import gc
import sys
from collections.abc import AsyncGenerator
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from switchboard.gateway.chunks import DONE
from tests.support.fake_upstream import FakeUpstream

CHAT = "/v1/chat/completions"


def chat(content: str = "hello there", /, **extra: Any) -> dict[str, Any]:
    return {"model": "fake-model", "messages": [{"role": "user", "content": content}], **extra}


def sse_payloads(text: str) -> list[Any]:
    events = [e for e in text.split("\n\n") if e.strip()]
    assert all(e.startswith("data: ") for e in events), events
    return [e[6:] if e[6:] == "[DONE]" else msgspec.json.decode(e[6:]) for e in events]


async def test_chat_completion_is_relayed(client: AsyncTestClient[Any]) -> None:
    response = await client.post(CHAT, json=chat("one two three"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["choices"][0]["message"]["content"] == "one two three"
    assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}


async def test_vllm_sampling_extras_pass_through(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    extras = {
        "top_k": 5,
        "min_p": 0.1,
        "repetition_penalty": 1.1,
        "min_tokens": 1,
        "response_format": {"type": "json_object"},
    }
    response = await client.post(CHAT, json=chat(**extras))
    assert response.status_code == 200
    sent = fake_upstream.requests[-1]
    assert {k: sent[k] for k in extras} == extras


async def test_null_fields_are_not_relayed(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    nulls = {"n": None, "ignore_eos": None, "stop": None, "temperature": None}
    response = await client.post(CHAT, json=chat(**nulls))
    assert response.status_code == 200
    assert not set(nulls) & set(fake_upstream.requests[-1])


async def test_greedy_n_asks_for_one_choice_and_repeats_it(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    response = await client.post(CHAT, json=chat("a b", temperature=0, n=3))
    assert fake_upstream.requests[-1]["n"] == 1
    body = response.json()
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert {c["message"]["content"] for c in body["choices"]} == {"a b"}
    assert body["usage"]["completion_tokens"] == 6
    streamed = await client.post(CHAT, json=chat("a b", temperature=0, n=2, stream=True))
    chunks = [p for p in sse_payloads(streamed.text) if p != "[DONE]" and p["choices"]]
    assert all([c["index"] for c in p["choices"]] == [0, 1] for p in chunks)
    sampled = await client.post(CHAT, json=chat("a b", temperature=0.9, n=3))
    assert sampled.status_code == 200
    assert fake_upstream.requests[-1]["n"] == 3


async def test_text_completion_is_relayed(client: AsyncTestClient[Any]) -> None:
    response = await client.post("/v1/completions", json={"model": "fake-model", "prompt": "a b"})
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["text"] == "a b"


async def test_stream_relays_every_event_and_hides_usage_unless_asked(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    response = await client.post(CHAT, json=chat("x y", stream=True))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    payloads = sse_payloads(response.text)
    assert payloads[-1] == "[DONE]"
    text = "".join(p["choices"][0]["delta"].get("content", "") for p in payloads[:-1])
    assert text == "x y "
    assert all(p.get("usage") is None for p in payloads[:-1])
    # the gateway still asked the model server for usage, to account for it
    assert fake_upstream.requests[-1]["stream_options"] == {
        "include_usage": True,
        "continuous_usage_stats": True,
    }


async def test_stream_with_include_usage_ends_with_the_usage_chunk(
    client: AsyncTestClient[Any],
) -> None:
    response = await client.post(
        CHAT, json=chat("x y", stream=True, stream_options={"include_usage": True})
    )
    payloads = sse_payloads(response.text)
    assert payloads[-2]["usage"] == {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
    assert payloads[-2]["choices"] == []


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (chat(temperature=5), "temperature"),
        (chat(max_tokens=0), "max_tokens"),
        (chat(max_tokens="ten"), "max_tokens"),
        (chat(top_p=0), "top_p"),
        (chat(n=100), "n"),
        (
            {"model": "fake-model", "messages": [{"role": "wizard", "content": "x"}]},
            "messages[0].role",
        ),
        ({"model": "fake-model", "messages": []}, "messages"),
        ({"model": "fake-model"}, "messages"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        (chat(stream="yes"), "stream"),
    ],
)
async def test_invalid_fields_are_400_naming_the_field(
    client: AsyncTestClient[Any], body: dict[str, Any], param: str
) -> None:
    response = await client.post(CHAT, json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert param.split("[")[0] in error["message"]


async def test_integral_floats_count_as_integers(client: AsyncTestClient[Any]) -> None:
    assert (await client.post(CHAT, json=chat(max_tokens=5.0, n=1.0))).status_code == 200
    rejected = await client.post(CHAT, json=chat(max_tokens=5.5))
    assert rejected.status_code == 400
    assert rejected.json()["error"]["param"] == "max_tokens"


async def test_too_many_messages_is_400(client: AsyncTestClient[Any], make_settings: Any) -> None:
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "x"}] * 300}
    response = await client.post(CHAT, json=body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages"


async def test_malformed_json_is_400(client: AsyncTestClient[Any]) -> None:
    response = await client.post(
        CHAT, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


async def test_a_body_over_the_cap_is_413(client: AsyncTestClient[Any]) -> None:
    response = await client.post(CHAT, json=chat("x" * 1_100_000))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


async def test_unknown_model_is_404(client: AsyncTestClient[Any]) -> None:
    response = await client.post(CHAT, json={**chat(), "model": "gpt-17"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
    assert (await client.get("/v1/models/gpt-17")).status_code == 404


async def test_models_are_listed_and_described(client: AsyncTestClient[Any]) -> None:
    listed = (await client.get("/v1/models")).json()
    assert [m["id"] for m in listed["data"]] == ["fake-model"]
    one = await client.get("/v1/models/fake-model")
    assert one.status_code == 200
    assert one.json()["id"] == "fake-model"


async def test_upstream_down_is_503_model_unavailable(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    fake_upstream.healthy = False
    response = await client.post(CHAT, json=chat())
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "model_unavailable"
    assert response.headers["retry-after"]


async def test_upstream_4xx_is_relayed_in_openai_shape(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    fake_upstream.fail_with = (
        400,
        {
            "object": "error",
            "message": "This model's maximum context length is 2048 tokens",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        },
    )
    response = await client.post(CHAT, json=chat())
    assert response.status_code == 400
    error = response.json()["error"]
    assert "maximum context length" in error["message"]
    assert error["type"] == "BadRequestError"


async def test_upstream_5xx_becomes_502(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    fake_upstream.fail_with = (500, {"error": {"message": "engine dead"}})
    response = await client.post(CHAT, json=chat(stream=True))
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_error"


async def test_unknown_v1_route_is_404_in_openai_shape(client: AsyncTestClient[Any]) -> None:
    response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


async def test_unknown_page_is_a_friendly_html_404(client: AsyncTestClient[Any]) -> None:
    response = await client.get("/no/such/page")
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    assert "Page not found" in response.text
    assert response.headers["x-request-id"] in response.text


async def test_openapi_schema_describes_the_v1_operations(client: AsyncTestClient[Any]) -> None:
    schema = (await client.get("/docs/openapi.json")).json()
    operations = {op["operationId"] for path in schema["paths"].values() for op in path.values()}
    assert {"createChatCompletion", "createCompletion", "listModels", "retrieveModel"} <= operations
    request_schema = schema["components"]["schemas"]["ChatCompletionRequest"]
    temperature = request_schema["properties"]["temperature"]["anyOf"][0]
    assert (temperature["minimum"], temperature["maximum"]) == (0.0, 2.0)
    assert set(request_schema["required"]) == {"model", "messages"}


async def test_a_stream_closed_right_after_done_is_recorded_as_complete(
    client: AsyncTestClient[Any],
) -> None:
    """Clients hang up as soon as they read [DONE]; that is a finished request, not a 499."""
    gateway = client.app.state.resources.gateway
    from switchboard.gateway.accounting import Caller
    from switchboard.gateway.chunks import DONE
    from switchboard.gateway.parsing import parse_request

    parsed = parse_request("chat", msgspec.json.encode(chat("a b", stream=True)))
    completion = await gateway.complete(
        parsed, Caller(user_id=None, key_id=None, rpm=10, tpm=10**6)
    )
    assert completion.events is not None
    async for batch in completion.events:
        if DONE in batch:
            break  # the client goes away here
    await completion.events.aclose()
    assert completion.outcome.status == 200
    await client.app.state.resources.usage.flush()
    from switchboard.usage.tables import UsageRecord

    rows = await UsageRecord.select(UsageRecord.status, UsageRecord.completion_tokens)
    assert rows == [{"status": 200, "completion_tokens": 2}]


async def test_a_stream_leaves_no_generator_for_the_garbage_collector_to_close(
    client: AsyncTestClient[Any],
) -> None:
    """The relay reads the upstream to its end and closes what it opened: a generator left
    suspended costs a task when it is collected (the event loop's finalizer closes it)."""
    from switchboard.gateway.accounting import Caller
    from switchboard.gateway.parsing import parse_request

    gateway = client.app.state.resources.gateway
    parsed = parse_request("chat", msgspec.json.encode(chat("a b c", stream=True)))
    left: list[str] = []
    firstiter, finalizer = sys.get_asyncgen_hooks()

    def record(generator: AsyncGenerator[Any, Any]) -> None:
        left.append(getattr(generator, "__qualname__", repr(generator)))
        if finalizer is not None:
            finalizer(generator)

    sys.set_asyncgen_hooks(firstiter=firstiter, finalizer=record)
    try:
        caller = Caller(user_id=None, key_id=None, rpm=10, tpm=10**6)
        completion = await gateway.complete(parsed, caller)
        assert completion.events is not None
        batches = [batch async for batch in completion.events]
        gc.collect()
    finally:
        sys.set_asyncgen_hooks(firstiter=firstiter, finalizer=finalizer)
    assert batches[-1][-1] is DONE
    assert left == []


VLLM_ONLY = (
    "stop_reason",
    "token_ids",
    "routed_experts",
    "prompt_logprobs",
    "prompt_token_ids",
    "kv_transfer_params",
    "reasoning",
)


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {key for item in value.values() for key in _keys(item)}
    if isinstance(value, list):
        return {key for item in value for key in _keys(item)}
    return set()


@pytest.mark.parametrize("path", [CHAT, "/v1/completions"])
async def test_answers_carry_openais_schema_without_vllms_null_fields(
    client: AsyncTestClient[Any], path: str
) -> None:
    """vLLM adds its own fields to every answer, null unless asked for (issue 21, item 2)."""
    body = chat("a b") if path == CHAT else {"model": "fake-model", "prompt": "a b"}
    answer = await client.post(path, json=body)
    assert answer.status_code == 200
    assert not _keys(answer.json()) & set(VLLM_ONLY), answer.text
    streamed = await client.post(path, json={**body, "stream": True})
    for payload in sse_payloads(streamed.text):
        if payload != "[DONE]":
            assert not _keys(payload) & set(VLLM_ONLY), payload


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"a":1,"stop_reason":null,"token_ids":null}', b'{"a":1}'),
        (b'{"stop_reason":null,"token_ids":null,"a":1}', b'{"a":1}'),
        (b'{"stop_reason":null}', b"{}"),
        (b'{"a":{"stop_reason":null},"b":[{"metrics":null,"c":2}]}', b'{"a":{},"b":[{"c":2}]}'),
        (b'{"a":"x","b":null}', b'{"a":"x","b":null}'),  # OpenAI's own nulls stay
    ],
)
def test_null_vllm_fields_are_cut_wherever_they_stand(data: bytes, expected: bytes) -> None:
    from switchboard.gateway.shaping import without_null_extras

    assert without_null_extras(data) == expected


def test_a_vllm_field_with_a_value_is_kept() -> None:
    from switchboard.gateway.shaping import without_null_extras

    data = b'{"id":"x","choices":[{"index":0,"stop_reason":"###","token_ids":null}]}'
    assert without_null_extras(data) == b'{"id":"x","choices":[{"index":0,"stop_reason":"###"}]}'
    first = b'{"token_ids":null,"text":"\\",\\"token_ids\\":null"}'
    assert without_null_extras(first) == b'{"text":"\\",\\"token_ids\\":null"}'  # strings untouched

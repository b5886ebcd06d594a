"""The published schema and the gateway agree: what the schema calls valid is served, what it
refuses is refused with a 4xx (the held-out Schemathesis run found requests where they differed:
fields refused whatever their value, documented as objects; a list prompt of nulls; an OPTIONS
answer leaving out GET; a ``count_tokens`` body that was not JSON answered with a 500)."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import pytest

from tests.conftest import mint_key_in
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer

MODEL = "fake-model"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
COMPLETION = {"model": MODEL, "prompt": "hi", "max_tokens": 5}
RESPONSE = {"model": MODEL, "input": "hi", "max_output_tokens": 5}
MESSAGE = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
CASES = [
    ("/v1/chat/completions", CHAT, {"moderation": {}}),
    ("/v1/chat/completions", CHAT, {"web_search_options": {}}),
    ("/v1/chat/completions", CHAT, {"audio": {"voice": "alloy", "format": "wav"}}),
    ("/v1/chat/completions", CHAT, {"modalities": ["text", "audio"]}),
    (
        "/v1/chat/completions",
        CHAT,
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,AA==", "detail": None},
                        },
                    ],
                }
            ]
        },
    ),
    ("/v1/completions", COMPLETION, {"prompt": [None]}),
    ("/v1/completions", COMPLETION, {"prompt": ["one", 2]}),
    ("/v1/completions", COMPLETION, {"prompt": [""]}),
    ("/v1/completions", COMPLETION, {"prompt": [[]]}),
    ("/v1/responses", RESPONSE, {"prompt": {}}),
    ("/v1/responses", RESPONSE, {"conversation": "conv_1"}),
    ("/v1/responses", RESPONSE, {"background": True}),
    ("/v1/messages", MESSAGE, {"container": "c-1"}),
    ("/v1/messages", MESSAGE, {"context_management": {}}),
    ("/v1/messages", MESSAGE, {"mcp_servers": [{"type": "url", "url": "https://x", "name": "x"}]}),
    ("/v1/messages", MESSAGE, {"stop_sequences": ["a", "b", "c", "d", "e"]}),  # vLLM takes 4
    ("/v1/messages", MESSAGE, {"thinking": {}}),
    ("/v1/messages", MESSAGE, {"thinking": {"type": "enabled"}}),
    ("/v1/responses", RESPONSE, {"input": []}),
    ("/v1/responses", RESPONSE, {"input": [{}]}),
    ("/v1/responses", RESPONSE, {"input": [{"type": "function_call", "name": "f"}]}),
    (
        "/v1/responses",
        RESPONSE,
        {"input": [{"type": "function_call", "name": None, "call_id": None, "arguments": None}]},
    ),
    ("/v1/messages/count_tokens", {"model": MODEL, "messages": MESSAGE["messages"]}, {"model": 1}),
]
INPUT_REQUIRED = ("/v1/responses", {"model": MODEL}, "input")


@pytest.fixture
def published(live_fake: LiveServer) -> dict[str, Any]:
    return dict(httpx.get(f"{live_fake.url}/docs/openapi.json").json())


def validator(schema: dict[str, Any], path: str) -> jsonschema.Draft202012Validator:
    body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    # the body's "#/components/..." references resolve within a root that carries them
    return jsonschema.Draft202012Validator({**body, "components": schema["components"]})


@pytest.mark.parametrize(("path", "base", "extra"), CASES)
def test_what_the_schema_refuses_is_refused_and_its_valid_base_is_served(
    live_fake: LiveServer,
    fake_upstream: FakeUpstream,
    published: dict[str, Any],
    path: str,
    base: dict[str, Any],
    extra: dict[str, Any],
) -> None:
    check = validator(published, path)
    assert list(check.iter_errors(base)) == []
    assert list(check.iter_errors({**base, **extra})) != [], extra
    secret = live_fake.run(mint_key_in(live_fake.app, "schema-reader"))
    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=live_fake.url, headers=headers) as client:
        assert client.post(path, json=base).status_code == 200
        refused = client.post(path, json={**base, **extra})
    assert refused.status_code == 400, refused.text
    reached = fake_upstream.requests + fake_upstream.tokenized  # count_tokens: the latter
    assert len(reached) == 1  # only the valid base reached the model server


def test_a_responses_request_without_input_is_refused_by_the_schema_and_the_gateway(
    live_fake: LiveServer, fake_upstream: FakeUpstream, published: dict[str, Any]
) -> None:
    path, body, field = INPUT_REQUIRED
    assert [error.message for error in validator(published, path).iter_errors(body)] == [
        f"'{field}' is a required property"
    ]
    secret = live_fake.run(mint_key_in(live_fake.app, "no-input"))
    refused = httpx.post(
        f"{live_fake.url}{path}", json=body, headers={"Authorization": f"Bearer {secret}"}
    )
    assert (refused.status_code, refused.json()["error"]["param"]) == (400, field)
    assert fake_upstream.requests == []


def test_a_legacy_function_call_naming_no_function_is_refused_and_a_bare_mode_dropped(
    live_fake: LiveServer, fake_upstream: FakeUpstream
) -> None:
    secret = live_fake.run(mint_key_in(live_fake.app, "legacy"))
    with httpx.Client(
        base_url=live_fake.url, headers={"Authorization": f"Bearer {secret}"}
    ) as client:
        named = client.post("/v1/chat/completions", json={**CHAT, "function_call": {"name": "x"}})
        assert (named.status_code, named.json()["error"]["param"]) == (400, "function_call")
        assert fake_upstream.requests == []
        mode = client.post("/v1/chat/completions", json={**CHAT, "function_call": "auto"})
    assert mode.status_code == 200, mode.text
    assert "tool_choice" not in fake_upstream.requests[-1]  # vLLM refuses a choice without tools


def test_token_ids_written_as_integral_floats_are_ids(
    live_fake: LiveServer, fake_upstream: FakeUpstream
) -> None:
    """JSON Schema counts 11336.0 as an integer; the ids reach vLLM as integers."""
    secret = live_fake.run(mint_key_in(live_fake.app, "floats"))
    answer = httpx.post(f"{live_fake.url}/v1/completions",
                        json={**COMPLETION, "prompt": [625, 11336.0]},
                        headers={"Authorization": f"Bearer {secret}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert fake_upstream.requests[-1]["prompt"] == [625, 11336]
    assert all(type(token) is int for token in fake_upstream.requests[-1]["prompt"])


def test_options_lists_every_method_the_schema_documents(
    live_fake: LiveServer, published: dict[str, Any]
) -> None:
    checked = 0
    for template, operations in published["paths"].items():
        if not template.startswith("/v1/"):
            continue
        path = template.replace("{response_id}", "resp_1").replace("{model_id}", MODEL)
        allowed = httpx.options(f"{live_fake.url}{path}").headers["allow"]
        documented = {method.upper() for method in operations}
        assert documented <= set(allowed.split(", ")), (template, allowed)
        checked += 1
    assert checked >= 8


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b"\xff", b"{" * 200 + b"}" * 200, b"{}"])
def test_count_tokens_answers_a_bad_body_with_anthropics_400(
    live_fake: LiveServer, fake_upstream: FakeUpstream, body: bytes
) -> None:
    secret = live_fake.run(mint_key_in(live_fake.app, "counter"))
    answer = httpx.post(
        f"{live_fake.url}/v1/messages/count_tokens", content=body, headers={"x-api-key": secret}
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["type"] == "invalid_request_error"
    assert fake_upstream.requests == []

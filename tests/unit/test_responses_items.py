"""Responses ``input`` items, type by type (issue 21, item 1): each item the published schema
allows is relayed as sent; what it does not allow is a 400 in OpenAI's shape that names the
field, and never reaches the model server. The held-out Schemathesis run found items that fit
the gateway's former loose shape (a ``type`` and a few required fields) but that vLLM 0.32
refuses by their type's own fields: one case here per item type that slipped through."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from tests.conftest import mint_key_in
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer
from tests.support.responses_items import CONVERSATION, TEXT

MODEL = "fake-model"
REFUSED: list[tuple[dict[str, Any], str, str]] = [
    # (item, param, code): each one fit the former shape, and vLLM refuses it (or fails on it);
    # the message names the field or what is refused
    ({"role": "user", "content": [{"type": "input_text"}]}, "input[0].content[0].text",
     "invalid_value"),
    ({"role": "user", "content": [{"type": "input_file", "file_data": "data:..."}]},
     "input[0].content[0].type", "unsupported_parameter"),
    ({"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]},
     "input[0].content[0].file_id", "unsupported_parameter"),
    ({"role": "assistant", "content": []}, "input[0].content", "invalid_value"),
    ({"type": "message", "role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]},
     "input[0].content[0].type", "unsupported_parameter"),
    ({"type": "message", "role": "assistant", "content": [TEXT], "id": None},
     "input[0].id", "invalid_value"),
    ({"role": "assistant", "content": [TEXT]}, "input[0].type", "invalid_value"),
    ({"role": "assistant", "content": "Hi.", "id": "msg_1", "status": "completed"},
     "input[0].id", "unknown_parameter"),
    ({"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}",
      "caller": {"type": "program"}}, "input[0].caller.caller_id", "invalid_value"),
    ({"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}", "strict": True},
     "input[0].strict", "unknown_parameter"),
    ({"type": "function_call_output", "call_id": "c", "output": [{"kind": "text"}]},
     "input[0].output[0].type", "invalid_value"),
    ({"type": "reasoning", "summary": [{"text": "x"}]}, "input[0].summary[0].type",
     "invalid_value"),
    ({"type": "reasoning", "summary": [], "encrypted_content": "gAAA"},
     "input[0].encrypted_content", "unsupported_parameter"),
    ({"type": "reasoning", "id": None, "summary": []}, "input[0].id", "invalid_value"),
    ({"type": "item_reference", "id": ""}, "input[0].id", "invalid_value"),
    ({"type": "item_reference"}, "input[0].id", "invalid_value"),
    ({"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {}},
     "input[0].type", "unsupported_parameter"),
    ({"type": "custom_tool_call", "call_id": "c", "name": "f", "input": "x"},
     "input[0].type", "unsupported_parameter"),
    ({"type": "telepathy"}, "input[0].type", "invalid_value"),
]  # fmt: skip


@pytest.fixture
def client(live_fake: LiveServer) -> Iterator[httpx.Client]:
    secret = live_fake.run(mint_key_in(live_fake.app, "items"))
    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=live_fake.url, headers=headers) as opened:
        yield opened


@pytest.fixture
def items_schema(client: httpx.Client) -> jsonschema.Draft202012Validator:
    published = client.get("/docs/openapi.json").json()
    body = published["paths"]["/v1/responses"]["post"]["requestBody"]["content"]
    schema = body["application/json"]["schema"]
    return jsonschema.Draft202012Validator({**schema, "components": published["components"]})


def body(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"model": MODEL, "input": items, "max_output_tokens": 5}


def test_every_published_item_type_is_relayed_as_sent(
    client: httpx.Client, fake_upstream: FakeUpstream, items_schema: jsonschema.Validator
) -> None:
    assert list(items_schema.iter_errors(body(CONVERSATION))) == []
    answered = client.post("/v1/responses", json=body(CONVERSATION))
    assert answered.status_code == 200, answered.text
    assert fake_upstream.requests[-1]["input"] == CONVERSATION


@pytest.mark.parametrize(("item", "param", "code"), REFUSED)
def test_an_item_the_model_server_refuses_is_a_400_naming_its_field(
    client: httpx.Client,
    fake_upstream: FakeUpstream,
    items_schema: jsonschema.Validator,
    item: dict[str, Any],
    param: str,
    code: str,
) -> None:
    assert list(items_schema.iter_errors(body([item]))) != []  # the schema says so too
    refused = client.post("/v1/responses", json=body([item]))
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    kinds = [str(part.get("type")) for part in item.get("content", []) if isinstance(part, dict)]
    named = (param, param.rsplit(".", 1)[-1], str(item.get("type")), *kinds)
    assert any(f"`{name}`" in error["message"] for name in named), error["message"]
    assert fake_upstream.requests == []


def test_the_published_items_are_one_schema_per_type(
    items_schema: jsonschema.Validator,
) -> None:
    schema: Any = items_schema.schema
    properties = schema["components"]["schemas"]["ResponsesRequest"]["properties"]
    listed = [branch for branch in properties["input"]["anyOf"] if branch.get("type") == "array"]
    refs = [branch["$ref"].rsplit("/", 1)[1] for branch in listed[0]["items"]["anyOf"]]
    assert sorted(refs) == [
        "AssistantMessageItem", "FunctionCallItem", "FunctionCallOutputItem", "InputMessageItem",
        "ItemReference", "OutputMessageItem", "ReasoningItem",
    ]  # fmt: skip

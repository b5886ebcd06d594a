"""Keep the published request schemas exact: msgspec's own JSON Schema of the request structs.

Litestar's generator loses constraints (it copies ``ge``/``gt`` only when truthy, so
``temperature >= 0`` vanishes, and drops bounds on list items such as ``stop[i]``), so the schema
would promise more than the gateway accepts. msgspec validates the requests, so its schema of the
same structs is the truth; it is JSON Schema 2020-12, as OpenAPI 3.1 uses.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar.openapi.spec import OpenAPI, Reference, Schema

from switchboard.gateway.messages_protocol import CountTokensRequest, MessagesRequest
from switchboard.gateway.protocol import ChatCompletionRequest, CompletionRequest
from switchboard.gateway.responses_items import INPUT_ITEM_TYPES
from switchboard.gateway.responses_protocol import ResponsesRequest

DOCUMENTED_REQUESTS: tuple[type[msgspec.Struct], ...] = (
    ChatCompletionRequest,
    CompletionRequest,
    ResponsesRequest,
    MessagesRequest,
    CountTokensRequest,
    *INPUT_ITEM_TYPES,  # a Responses request refers to them by name (INPUT_ITEM_SCHEMA)
)
REF_TEMPLATE = "#/components/schemas/{name}"
_NESTED_ONE = {"items", "additionalProperties", "not"}
_NESTED_MANY = {"anyOf", "oneOf", "allOf", "prefixItems"}


_KEYWORDS = {"not": "schema_not", "if": "schema_if", "else": "schema_else"}
"""JSON Schema keywords that are Python keywords: Litestar's field names for them."""


def _snake(name: str) -> str:
    return _KEYWORDS.get(name) or re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def to_litestar(node: dict[str, Any]) -> Schema | Reference:
    """A JSON Schema object as Litestar's OpenAPI model."""
    if "$ref" in node:
        reference = Reference(ref=node["$ref"])
        rest = {key: value for key, value in node.items() if key != "$ref"}
        # a reference with constraints of its own (msgspec puts them beside it): both hold
        return Schema(all_of=[reference, to_litestar(rest)]) if rest else reference
    fields: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            value = {name: to_litestar(sub) for name, sub in value.items()}
        elif key in _NESTED_ONE and isinstance(value, dict):
            value = to_litestar(value)
        elif key in _NESTED_MANY:
            value = [to_litestar(sub) for sub in value]
        fields[_snake(key)] = value
    return Schema(**fields)


def publish_request_schemas(openapi: OpenAPI, example_model: str) -> list[str]:
    """Replace Litestar's component schemas of the request structs (and the types they use),
    with the served model as the example of ``model``."""
    _, components = msgspec.json.schema_components(DOCUMENTED_REQUESTS, ref_template=REF_TEMPLATE)
    if openapi.components is None or openapi.components.schemas is None:
        return []
    for name, schema in components.items():
        if "model" in schema.get("properties", {}):
            schema["properties"]["model"]["examples"] = [example_model]
        openapi.components.schemas[name] = to_litestar(schema)  # type: ignore[assignment]
    return sorted(components)

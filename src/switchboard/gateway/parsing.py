"""Parsing `/v1` request bodies against the wire types: strict; errors name the field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from switchboard.gateway.errors import GatewayError, invalid_request
from switchboard.gateway.protocol import ChatCompletionRequest, CompletionRequest

Kind = Literal["chat", "completion"]
REQUEST_TYPES: dict[Kind, type[ChatCompletionRequest] | type[CompletionRequest]] = {
    "chat": ChatCompletionRequest,
    "completion": CompletionRequest,
}


@dataclass(frozen=True)
class ParsedRequest:
    """A validated request: its typed form, and the caller's JSON object as sent."""

    kind: Kind
    request: ChatCompletionRequest | CompletionRequest
    body: dict[str, Any]


def parse_request(kind: Kind, raw: bytes) -> ParsedRequest:
    """Validate a body strictly against the published schema; errors name the field."""
    try:
        request = msgspec.json.decode(raw, type=REQUEST_TYPES[kind])
        body = msgspec.json.decode(raw)
    except msgspec.ValidationError as exc:
        if "got `float`" not in str(exc):
            raise validation_error(exc) from None
        # JSON Schema counts 5.0 as an integer; msgspec's strict mode does not.
        body = _integral_floats_as_ints(msgspec.json.decode(raw))
        try:
            request = msgspec.convert(body, REQUEST_TYPES[kind])
        except msgspec.ValidationError as again:
            raise validation_error(again) from None
    except msgspec.DecodeError as exc:
        raise invalid_request(f"The body is not valid JSON: {exc}", code="invalid_json") from None
    return ParsedRequest(kind, request, body)


def _integral_floats_as_ints(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral_floats_as_ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral_floats_as_ints(item) for item in value]
    return value


def validation_error(exc: msgspec.ValidationError) -> GatewayError:
    """``Expected `float` <= 2.0 - at `$.temperature``` → 400 with ``param="temperature"``."""
    text, _, where = str(exc).partition(" - at `$")
    param = where.rstrip("`").lstrip(".") or None
    for prefix in ("Object missing required field `", "Object contains unknown field `"):
        if text.startswith(prefix):
            name = text[len(prefix) :].split("`")[0]
            param = f"{param}.{name}" if param else name
            if prefix.startswith("Object contains"):
                return invalid_request(
                    f"Unrecognized request argument supplied: `{param}` (docs/api.md lists the "
                    "fields the gateway accepts).",
                    param,
                    "unknown_parameter",
                )
    if param:
        return invalid_request(f"Invalid value for `{param}`: {text}", param, "invalid_value")
    return invalid_request(f"Invalid request body: {text}", code="invalid_value")

"""Parsing `/v1` request bodies against the wire types: strict; errors name the field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import msgspec

from switchboard.gateway.contract import ContractError, Problem, check_chat, check_completion
from switchboard.gateway.errors import GatewayError, invalid_request
from switchboard.gateway.messages_protocol import MessagesRequest
from switchboard.gateway.messages_protocol import check_supported as check_messages
from switchboard.gateway.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    integral_floats_as_ints,
)
from switchboard.gateway.responses_protocol import ResponsesRequest, Unsupported, check_supported

T = TypeVar("T")
Kind = Literal["chat", "completion", "responses", "messages"]
RequestType = ChatCompletionRequest | CompletionRequest | ResponsesRequest | MessagesRequest
REQUEST_TYPES: dict[Kind, type[RequestType]] = {
    "chat": ChatCompletionRequest,
    "completion": CompletionRequest,
    "responses": ResponsesRequest,
    "messages": MessagesRequest,
}


@dataclass(frozen=True)
class ParsedRequest:
    """A validated request: its typed form, and the caller's JSON object as sent."""

    kind: Kind
    request: RequestType
    body: dict[str, Any]


MAX_DEPTH = 64
"""JSON nested deeper than this is refused: real JSON Schemas and tool parameters stay far below
it, and deeper input only costs recursion (here, in vLLM and in its grammar compiler)."""
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_INNERMOST = re.compile(rb"\[\]|\{\}")


def too_deep(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether ``raw`` nests arrays and objects more than ``limit`` levels deep, found without
    recursion: strings dropped, then innermost bracket pairs removed once per level."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    skeleton = _NOT_BRACKET.sub(b"", _STRING.sub(b"", raw))
    for _ in range(limit):
        skeleton, removed = _INNERMOST.subn(b"", skeleton)
        if not skeleton or not removed:
            break  # all levels gone, or malformed JSON (the decoder says why)
    return bool(skeleton) and bool(_INNERMOST.search(skeleton))


def _refuse_deep(raw: bytes) -> None:
    if too_deep(raw):
        raise invalid_request(
            f"The body nests arrays and objects more than {MAX_DEPTH} levels deep.",
            code="invalid_json",
        )


def not_json(exc: Exception) -> GatewayError:
    """The 400 for a body that is not JSON, not UTF-8, or nested past the decoder."""
    if isinstance(exc, UnicodeDecodeError):
        return invalid_request(
            f"The body is not valid UTF-8 (byte {exc.start}).", code="invalid_json"
        )
    if isinstance(exc, RecursionError):
        return invalid_request("The body nests too deeply.", code="invalid_json")
    return invalid_request(f"The body is not valid JSON: {exc}", code="invalid_json")


def decode_body(raw: bytes, kind: type[T]) -> tuple[T, Any]:
    """A body as ``kind`` and as plain JSON, with ``parse_request``'s errors for bodies that
    are too deep, not JSON, not UTF-8 or not valid (a 400 naming the problem, never a 500)."""
    _refuse_deep(raw)
    try:
        return msgspec.json.decode(raw, type=kind), msgspec.json.decode(raw)
    except msgspec.ValidationError as exc:
        raise validation_error(exc) from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise not_json(exc) from None


def parse_request(kind: Kind, raw: bytes) -> ParsedRequest:
    """Validate a body strictly against the published schema; errors name the field."""
    _refuse_deep(raw)
    try:
        parsed = _decode(kind, raw)
        request = parsed.request
        if isinstance(request, ResponsesRequest):
            check_supported(request)
        elif isinstance(request, MessagesRequest):
            check_messages(request)
        elif isinstance(request, ChatCompletionRequest):
            check_chat(request)
        else:
            check_completion(request)
        return parsed
    except Unsupported as exc:
        raise invalid_request(str(exc), exc.param, "unsupported_parameter") from None
    except ContractError as exc:
        raise contract_error(exc.problems, "unsupported_parameter") from None
    except msgspec.ValidationError as exc:
        raise every_problem(kind, raw, exc) from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise not_json(exc) from None


def _decode(kind: Kind, raw: bytes) -> ParsedRequest:
    try:
        request = msgspec.json.decode(raw, type=REQUEST_TYPES[kind])
    except msgspec.ValidationError as exc:
        if "got `float`" not in str(exc):
            raise
        # JSON Schema counts 5.0 as an integer; msgspec's strict mode does not.
        body = integral_floats_as_ints(msgspec.json.decode(raw))
        return ParsedRequest(kind, msgspec.convert(body, REQUEST_TYPES[kind]), body)
    body = msgspec.json.decode(raw)
    if isinstance(request, CompletionRequest) and isinstance(request.prompt, list):
        # token ids in an untyped list: 5.0 is an id too (JSON Schema's integer), relayed as 5
        request.prompt = body["prompt"] = integral_floats_as_ints(request.prompt)
    return ParsedRequest(kind, request, body)


def every_problem(kind: Kind, raw: bytes, first: msgspec.ValidationError) -> GatewayError:
    """A 400 naming every field that is wrong (msgspec stops at the first): each field the body
    holds is checked against its type alone, and each required field that is missing named."""
    try:
        body = integral_floats_as_ints(msgspec.json.decode(raw))
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return validation_error(first)
    if not isinstance(body, dict):
        return validation_error(first)
    fields = {field.encode_name: field for field in msgspec.structs.fields(REQUEST_TYPES[kind])}
    problems: list[Problem] = []
    unknown = sorted(key for key in body if key not in fields)
    problems += [(key, "unrecognized request argument") for key in unknown]
    for name, field in fields.items():
        if name not in body:
            if field.required:
                problems.append((name, "required"))
            continue
        try:
            msgspec.convert(body[name], field.type)
        except msgspec.ValidationError as exc:
            error = validation_error(exc)
            where = f"{name}.{error.param}" if error.param and error.param != name else name
            problems.append((where.replace(".[", "["), _why(str(exc))))
    if len(problems) <= 1:
        return validation_error(first)
    return contract_error(problems, "unknown_parameter" if unknown else "invalid_value")


def _why(message: str) -> str:
    where = _WHERE.search(message)
    return message[: where.start()] if where else message


def contract_error(problems: list[Problem], code: str) -> GatewayError:
    if len(problems) == 1:
        param, why = problems[0]
        return invalid_request(f"Invalid value for `{param}`: {why}.", param, code)
    listed = "; ".join(f"`{param}`: {why}" for param, why in problems)
    return invalid_request(
        f"The request has {len(problems)} problems: {listed} (docs/api.md lists every field).",
        problems[0][0],
        code,
    )


_WHERE = re.compile(r" - at (?:`key` in )?`\$(.*)`$")


def validation_error(exc: msgspec.ValidationError) -> GatewayError:
    """``Expected `float` <= 2.0 - at `$.temperature``` → 400 with ``param="temperature"``."""
    message = str(exc)
    where = _WHERE.search(message)
    text = message[: where.start()] if where else message
    param = where.group(1).lstrip(".") if where else None
    param = param or None
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

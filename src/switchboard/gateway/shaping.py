"""What goes to the model server and what comes back to the caller, shaped in one pass.

Out: the caller's JSON object with what the engine needs adjusted (``upstream_body``). Back: each
response or stream chunk is decoded once into the few fields the gateway reads (usage, text, an
in-band error) and changed only where it must be, as bytes where that is safe: the ``usage``
member the caller did not ask for is cut out (the gateway always asks for usage, to account for
streams that end early), and ``n > 1`` with greedy sampling repeats one choice (vLLM refuses it,
OpenAI answers n identical choices). Everything else is relayed byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from switchboard.gateway.errors import GatewayError, upstream_error
from switchboard.gateway.parsing import ParsedRequest
from switchboard.gateway.protocol import Usage

# --- out: the request the model server gets -------------------------------------------------


def upstream_body(parsed: ParsedRequest, cap: int, cap_is_operators: bool) -> dict[str, Any]:
    """The caller's JSON object as relayed: nulls dropped (vLLM refuses some, e.g. ``n``),
    usage asked of every stream, ``max_tokens`` within ``cap`` (given by the operator's
    ``SWITCHBOARD_MAX_TOKENS_CAP`` also when the caller names none)."""
    body = {key: value for key, value in parsed.body.items() if value is not None}
    if parsed.request.stream:
        # Usage in every chunk, so a stream that ends early is accounted for what it generated;
        # cut out again when the caller did not ask for it (``strip_usage``).
        body["stream_options"] = {"include_usage": True, "continuous_usage_stats": True}
    else:
        body.pop("stream_options", None)  # vLLM refuses it on non-streaming requests
    if isinstance(body.get("messages"), list):
        body["messages"] = [_relayable_message(m) for m in body["messages"]]
    if body.get("top_logprobs") and not body.get("logprobs"):
        body["logprobs"] = True  # asking for top logprobs implies asking for logprobs
    named = False
    for name in ("max_tokens", "max_completion_tokens"):
        if name in body:
            body[name] = min(int(body[name]), cap)
            named = True
    if cap_is_operators and not named:
        body["max_tokens"] = cap
    if isinstance(body.get("min_tokens"), int) and body["min_tokens"] > cap:
        body["min_tokens"] = cap  # the cap is ours: keep min_tokens within it
    return body


def _relayable_message(message: Any) -> Any:
    """Drop null fields (vLLM refuses `name: null`); `content: null` (beside tool_calls)
    becomes "" because chat templates concatenate it as text."""
    if not isinstance(message, dict):
        return message
    cleaned = {key: value for key, value in message.items() if value is not None}
    cleaned.setdefault("content", "")
    return cleaned


def fan_out_count(body: dict[str, Any]) -> int:
    """How many copies of one greedy choice to make (1: none). Adjusts ``body`` to ask for one."""
    n = int(body.get("n") or 1)
    if n > 1 and body.get("temperature") == 0:
        body["n"] = 1
        return n
    return 1


# --- back: what the caller gets -------------------------------------------------------------


class _Delta(msgspec.Struct):
    content: str | None = None
    tool_calls: list[Any] | None = None


class _Choice(msgspec.Struct):
    text: str | None = None
    delta: _Delta | None = None

    @property
    def generated(self) -> str:
        return self.text or (self.delta.content if self.delta else None) or ""

    @property
    def calls_tools(self) -> bool:
        return bool(self.delta and self.delta.tool_calls)


class _Peek(msgspec.Struct):
    """The parts of a response or stream chunk the gateway reads; the rest is relayed as is."""

    choices: list[_Choice] = []
    usage: Usage | None = None
    error: Any = None
    """An in-band error event (vLLM reports failures inside a started stream this way)."""


_peek = msgspec.json.Decoder(_Peek)


def peek(payload: bytes) -> _Peek | None:
    try:
        return _peek.decode(payload)
    except msgspec.DecodeError:  # not JSON, or not shaped like a chunk: relayed untouched
        return None


@dataclass(frozen=True, slots=True)
class ChunkInfo:
    usage: Usage | None
    text: str
    """Text of the first choice (what the chat shows)."""
    generated: bool
    """Some choice carries generated text or a tool-call delta (time to first token)."""
    usage_only: bool
    """The final chunk that only reports usage."""


def read_chunk(data: bytes) -> ChunkInfo | GatewayError | None:
    """What one ``data:`` payload says: its usage and text, an in-band error, or ``None`` when
    it is not a chunk the gateway understands (relayed as it is)."""
    peeked = peek(data)
    if peeked is None:
        return None
    if peeked.error is not None:
        return upstream_error(502, data)
    first = peeked.choices[0].generated if peeked.choices else ""
    return ChunkInfo(
        usage=peeked.usage,
        text=first,
        generated=bool(first)
        or any(choice.generated or choice.calls_tools for choice in peeked.choices),
        usage_only=not peeked.choices and peeked.usage is not None,
    )


_USAGE = b',"usage":'


def strip_usage(data: bytes) -> bytes:
    """The chunk without its ``usage`` member. vLLM writes it with no spaces, as a member after
    the first, holding numbers and objects of numbers: the member is cut out as bytes (a quote
    cannot appear unescaped inside a string, so ``,"usage":`` is the member). Anything else is
    decoded and encoded again."""
    start = data.rfind(_USAGE)
    if start > 0:
        end = _object_end(data, start + len(_USAGE))
        if end:
            return data[:start] + data[end:]
    decoded = msgspec.json.decode(data)
    decoded.pop("usage", None)
    return msgspec.json.encode(decoded)


def _object_end(data: bytes, at: int) -> int:
    """Just past the ``null`` or the object that starts at ``at`` (usage's keys are plain
    names and its values numbers or objects of numbers: braces are all structure), else 0."""
    if data.startswith(b"null", at):
        return at + 4
    if data[at : at + 1] != b"{":
        return 0
    depth = 0
    for index in range(at, len(data)):
        byte = data[index]
        if byte == 0x7B:  # {
            depth += 1
        elif byte == 0x7D:  # }
            depth -= 1
            if depth == 0:
                return index + 1
    return 0


def _fan_out(payload: dict[str, Any], n: int) -> dict[str, Any]:
    choices = payload.get("choices")
    if isinstance(choices, list) and choices:
        payload["choices"] = [{**choice, "index": i} for i in range(n) for choice in choices]
    usage = payload.get("usage")
    if isinstance(usage, dict) and usage.get("completion_tokens") is not None:
        usage["completion_tokens"] = int(usage["completion_tokens"]) * n
        usage["total_tokens"] = int(usage.get("prompt_tokens") or 0) + usage["completion_tokens"]
    return payload


def fan_out(raw: bytes, n: int) -> bytes:
    """A response body, or one stream chunk's JSON, with its choice repeated ``n`` times and
    its completion tokens counted ``n`` times, as OpenAI counts them (not JSON: as it is)."""
    try:
        decoded = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return raw
    return msgspec.json.encode(_fan_out(decoded, n)) if isinstance(decoded, dict) else raw

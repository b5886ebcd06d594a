"""Chat and text completions as a surface (surface.py): what goes to the model server and what
comes back to the caller, shaped in one pass.

Out: the caller's JSON object with what the engine needs adjusted (``upstream_body``). Back: each
response or stream chunk is decoded once into the few fields the gateway reads (usage, text, an
in-band error) and changed only where it must be, as bytes where that is safe: the ``usage``
member the caller did not ask for is cut out (the gateway always asks for usage, to account for
streams that end early), and ``n > 1`` with greedy sampling repeats one choice (vLLM refuses it,
OpenAI answers n identical choices). Everything else is relayed byte for byte.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import msgspec

from switchboard.gateway.accounting import Outcome
from switchboard.gateway.answers import Usage
from switchboard.gateway.chunks import DONE, Chunk, StreamFailed, StreamItem
from switchboard.gateway.contract import prompt_count, relayed
from switchboard.gateway.errors import GatewayError, upstream_error
from switchboard.gateway.parsing import Kind, ParsedRequest
from switchboard.gateway.sse import SSEEvent
from switchboard.gateway.surface import Answer, Cost, StreamOptions

CHARS_PER_TOKEN = 4
"""The rate limits' quick prompt estimate (their reservation is settled with the real count)."""
TEMPLATE_BYTES = 2048
"""What a chat template adds once (system preamble, tool instructions), in bytes: generous."""
MESSAGE_BYTES = 64
"""What a template adds per message (role markers, separators), in bytes."""
VLLM_ONLY = ("stop_reason", "token_ids", "routed_experts", "prompt_logprobs", "prompt_token_ids",
             "prompt_text", "kv_transfer_params", "ec_transfer_params", "metrics", "reasoning",
             "reasoning_content")  # fmt: skip
"""Fields vLLM adds to OpenAI's answers; dropped where they are null (OpenAI's schema)."""
_VLLM_NAMES = b"|".join(re.escape(name.encode()) for name in VLLM_ONLY)
_NULL_EXTRA = re.compile(rb',"(?:%b)":null|"(?:%b)":null,' % (_VLLM_NAMES, _VLLM_NAMES))
"""A null vLLM field as a member of compact JSON: after another member, or first."""
_NAMED = re.compile(rb'"(?:%b)"' % _VLLM_NAMES)
CHAT_FIELDS = ("messages", "tools", "chat_template_kwargs", "add_generation_prompt",
               "continue_final_message")  # fmt: skip
"""What decides a chat prompt's tokens: the fields vLLM's ``/tokenize`` takes from a chat."""

# --- out: the request the model server gets -------------------------------------------------


def upstream_body(parsed: ParsedRequest, cap: int, cap_is_operators: bool) -> dict[str, Any]:
    """The caller's JSON object as relayed: nulls dropped (vLLM refuses some, e.g. ``n``),
    usage asked of every stream, ``max_tokens`` within ``cap`` (given by the operator's
    ``SWITCHBOARD_MAX_TOKENS_CAP`` also when the caller names none)."""
    body = relayed({key: value for key, value in parsed.body.items() if value is not None})
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
    becomes "" because chat templates concatenate it as text. OpenAI's legacy function
    messages become what vLLM's templates know: a tool call and its tool answer."""
    if not isinstance(message, dict):
        return message
    cleaned = {key: value for key, value in message.items() if value is not None}
    cleaned.setdefault("content", "")
    call = cleaned.pop("function_call", None)
    if isinstance(call, dict) and "tool_calls" not in cleaned:
        cleaned["tool_calls"] = [{"id": call.get("name", "call"), "type": "function",
                                  "function": call}]  # fmt: skip
    if cleaned.get("role") == "function":
        cleaned = {"role": "tool", "tool_call_id": cleaned.get("name", "call"),
                   "content": cleaned["content"]}  # fmt: skip
    return cleaned


def without_null_extras(data: bytes) -> bytes:
    """``data`` without vLLM's own fields where they are null. vLLM writes compact JSON: they
    are cut out as bytes (a quote cannot appear unescaped inside a JSON string, so
    ``,"name":null`` is that member, and ``"name":null,`` when it comes first), in one pass of
    one expression: a stream's every chunk goes through here (a search per name and pattern
    was 8 µs a chunk, 2.5 now). A name still there (written otherwise, or with a value) is
    looked at in the decoded answer."""
    data = _NULL_EXTRA.sub(b"", data)
    if _NAMED.search(data) is None:
        return data
    try:
        decoded = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return data
    return msgspec.json.encode(_drop_null_extras(decoded))


def _drop_null_extras(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _drop_null_extras(item) for key, item in value.items()
                if not (item is None and key in VLLM_ONLY)}  # fmt: skip
    if isinstance(value, list):
        return [_drop_null_extras(item) for item in value]
    return value


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


class CompletionsSurface:
    """``/v1/chat/completions`` (``kind="chat"``) and ``/v1/completions``."""

    counts_prompts = True
    count_path, count_field = "/tokenize", "count"

    def __init__(self, kind: Kind, path: str) -> None:
        self.kind = kind
        self.path = path

    def upstream_body(self, parsed: ParsedRequest, cap: int, operators_cap: bool) -> dict[str, Any]:
        return upstream_body(parsed, cap, operators_cap)

    def copies(self, body: dict[str, Any]) -> int:
        return fan_out_count(body)

    def cost(self, parsed: ParsedRequest, body: dict[str, Any], cap: int) -> Cost:
        prompt = body.get("messages") or body.get("prompt") or ""
        prompts = prompt_count(body) if self.kind == "completion" else 1
        asked = int(body.get("max_completion_tokens") or body.get("max_tokens") or cap)
        # as asked (fan-out asks the model for fewer); best_of candidates are generated too
        choices = max(int(parsed.body.get("n") or 1), int(parsed.body.get("best_of") or 1))
        estimate = len(str(prompt)) // CHARS_PER_TOKEN + asked * choices * prompts
        return Cost(estimate, asked, choices, prompts)

    def tokenize_asks(self, model: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        """What to ask vLLM's ``/tokenize`` to count the prompts, one ask per prompt."""
        if self.kind == "chat":
            return [{"model": model, **{k: body[k] for k in CHAT_FIELDS if k in body}}]
        prompts = body.get("prompt")
        texts = prompts if isinstance(prompts, list) else [prompts]
        if not all(isinstance(text, str) for text in texts):
            return []  # token ids: counted as they are (prompt_bound)
        return [{"model": model, "prompt": text} for text in texts]

    def prompt_bound(self, body: dict[str, Any]) -> int:
        if self.kind == "completion":
            prompts = body.get("prompt")
            if isinstance(prompts, list) and prompts and isinstance(prompts[0], int):
                return len(prompts)  # token ids: exactly as many tokens
            texts = prompts if isinstance(prompts, list) else [prompts]
            return sum(
                len(text) if isinstance(text, list) else len(str(text).encode()) + MESSAGE_BYTES
                for text in texts
            )
        messages = body.get("messages") or []
        size = len(msgspec.json.encode(messages)) + 2 * len(msgspec.json.encode(body.get("tools")))
        return size + MESSAGE_BYTES * len(messages) + TEMPLATE_BYTES

    def read_answer(self, payload: bytes, copies: int) -> tuple[bytes, Answer]:
        payload = without_null_extras(payload)
        if copies > 1:
            payload = fan_out(payload, copies)
        peeked = peek(payload)
        if peeked is not None and peeked.error is not None:
            return payload, Answer(None, upstream_error(502, payload))
        return payload, Answer(peeked.usage if peeked else None)

    def shape(self, event: SSEEvent, plan: StreamOptions, outcome: Outcome) -> list[StreamItem]:
        data = event.data
        if data == b"[DONE]":
            return [DONE]
        data = without_null_extras(data)
        if outcome.copies > 1:
            data = fan_out(data, outcome.copies)
        info = read_chunk(data)
        if isinstance(info, GatewayError):
            return [StreamFailed(info)]  # an in-band error: the end of the stream
        if info is None:
            return [Chunk(data)]
        if info.generated and outcome.first_token_at is None:
            outcome.first_token_at = time.monotonic()
        if info.usage is not None:
            outcome.usage = info.usage
            if info.usage_only:
                return [Chunk(data)] if plan.include_usage else []
            if not plan.continuous_usage:
                data = strip_usage(data)
        return [Chunk(data, info.text)]


CHAT = CompletionsSurface("chat", "/chat/completions")
COMPLETION = CompletionsSurface("completion", "/completions")

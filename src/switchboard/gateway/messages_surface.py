"""Anthropic's Messages API as a surface (surface.py), relayed to vLLM's ``/v1/messages``.

Its stream is Anthropic's named events: ``message_start`` (the input tokens), content blocks
and their deltas, ``message_delta`` (the output tokens so far), ``message_stop``. Input tokens
are split by Anthropic into uncached and cached parts; the prompt the engine counted is their sum.
The prompt of a request with a budget is counted by vLLM's ``/v1/messages/count_tokens``.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from switchboard.gateway.accounting import Outcome
from switchboard.gateway.answers import Usage
from switchboard.gateway.chunks import DONE, Chunk, StreamFailed, StreamItem
from switchboard.gateway.errors import GatewayError
from switchboard.gateway.parsing import Kind, ParsedRequest
from switchboard.gateway.sse import SSEEvent
from switchboard.gateway.surface import Answer, Cost, StreamOptions

CHARS_PER_TOKEN = 4
TEMPLATE_BYTES = 2048
MESSAGE_BYTES = 64
DROPPED = ("metadata", "service_tier")
COUNTED = ("model", "messages", "system", "tools", "tool_choice", "thinking", "output_config")


class _Usage(msgspec.Struct):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None

    @property
    def prompt_tokens(self) -> int:
        return (self.input_tokens + (self.cache_read_input_tokens or 0)
                + (self.cache_creation_input_tokens or 0))  # fmt: skip


class _Message(msgspec.Struct):
    usage: _Usage | None = None


class _Delta(msgspec.Struct):
    type: str = ""
    text: str | None = None


class _Error(msgspec.Struct):
    message: str = ""


class _Event(msgspec.Struct):
    type: str = ""
    message: _Message | None = None
    delta: _Delta | None = None
    usage: _Usage | None = None
    error: _Error | None = None


_event = msgspec.json.Decoder(_Event)
_message = msgspec.json.Decoder(_Message)


class MessagesSurface:
    kind: Kind = "messages"
    path = "/messages"
    counts_prompts = True
    count_path, count_field = "/v1/messages/count_tokens", "input_tokens"

    def upstream_body(self, parsed: ParsedRequest, cap: int, operators_cap: bool) -> dict[str, Any]:
        body = {k: v for k, v in parsed.body.items() if v is not None and k not in DROPPED}
        body["max_tokens"] = min(int(body["max_tokens"]), cap)
        return body

    def copies(self, body: dict[str, Any]) -> int:
        return 1

    def cost(self, parsed: ParsedRequest, body: dict[str, Any], cap: int) -> Cost:
        prompt = len(str(body.get("messages"))) + len(str(body.get("system") or ""))
        asked = int(body["max_tokens"])
        return Cost(prompt // CHARS_PER_TOKEN + asked, asked, 1, 1)

    def tokenize_asks(self, model: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        return [{key: body[key] for key in COUNTED if key in body}]

    def prompt_bound(self, body: dict[str, Any]) -> int:
        messages = body.get("messages") or []
        size = len(msgspec.json.encode([body.get("system"), messages]))
        size += 2 * len(msgspec.json.encode(body.get("tools")))
        return size + MESSAGE_BYTES * len(messages) + TEMPLATE_BYTES

    def read_answer(self, payload: bytes, copies: int) -> tuple[bytes, Answer]:
        try:
            usage = _message.decode(payload).usage
        except msgspec.DecodeError:
            return payload, Answer(None)
        if usage is None:
            return payload, Answer(None)
        prompt = usage.prompt_tokens
        return payload, Answer(Usage(prompt, usage.output_tokens, prompt + usage.output_tokens))

    def shape(self, event: SSEEvent, plan: StreamOptions, outcome: Outcome) -> list[StreamItem]:
        try:
            read = _event.decode(event.data)
        except msgspec.DecodeError:
            return [Chunk(event.data, event=event.event)]
        name = event.event or read.type.encode()
        if read.type == "error":
            why = read.error.message if read.error else "no reason given"
            failure = GatewayError(502, f"The model server failed: {why}", type="server_error",
                                   code="upstream_error")  # fmt: skip
            return [StreamFailed(failure)]
        usage = outcome.usage
        if read.type == "message_start" and read.message and read.message.usage:
            prompt = read.message.usage.prompt_tokens
            outcome.usage = Usage(prompt, usage.completion_tokens, prompt + usage.completion_tokens)
        elif read.type == "message_delta" and read.usage is not None:
            done = read.usage.output_tokens
            outcome.usage = Usage(usage.prompt_tokens, done, usage.prompt_tokens + done)
        elif read.type == "content_block_delta":
            if outcome.first_token_at is None:
                outcome.first_token_at = time.monotonic()
            text = read.delta.text if read.delta and read.delta.type == "text_delta" else None
            return [Chunk(event.data, text or "", event=name)]
        elif read.type == "message_stop":
            return [Chunk(event.data, event=name), DONE]
        return [Chunk(event.data, event=name)]


MESSAGES = MessagesSurface()

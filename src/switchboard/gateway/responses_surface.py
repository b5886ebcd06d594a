"""The Responses API as a surface (surface.py), relayed to vLLM's ``/v1/responses``.

Upstream it never stores and never chains: the gateway keeps responses itself (``store`` and
``previous_response_id`` are answered by the ``responses`` feature before a request gets here),
so vLLM replicas need no shared state. Its stream is named events (``response.created`` …
``response.completed``), each relayed as it comes; the terminal one carries the whole response
and its usage (input and output tokens).
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
from switchboard.gateway.responses_protocol import DROPPED
from switchboard.gateway.sse import SSEEvent
from switchboard.gateway.surface import Answer, Cost, StreamOptions

CHARS_PER_TOKEN = 4
TEMPLATE_BYTES = 2048
ITEM_BYTES = 64
TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
"""The events that end a response's stream; each carries the whole response."""
GENERATED = frozenset({"response.output_text.delta", "response.function_call_arguments.delta",
                       "response.reasoning_text.delta"})  # fmt: skip


class _ResponsesUsage(msgspec.Struct):
    input_tokens: int = 0
    output_tokens: int = 0

    def as_usage(self) -> Usage:
        return Usage(self.input_tokens, self.output_tokens, self.input_tokens + self.output_tokens)


class _Response(msgspec.Struct):
    usage: _ResponsesUsage | None = None


class _Event(msgspec.Struct):
    type: str = ""
    delta: Any = None
    response: _Response | None = None
    message: str | None = None
    code: str | None = None


_event = msgspec.json.Decoder(_Event)
_response = msgspec.json.Decoder(_Response)


class ResponsesSurface:
    kind: Kind = "responses"
    path = "/responses"
    counts_prompts = False
    count_path, count_field = "", ""

    def upstream_body(self, parsed: ParsedRequest, cap: int, operators_cap: bool) -> dict[str, Any]:
        body = {key: value for key, value in parsed.body.items() if value is not None}
        for owned_here in ("previous_response_id", "store", "stream_options", "background"):
            body.pop(owned_here, None)
        for dropped in DROPPED:
            body.pop(dropped, None)
        if isinstance(body.get("reasoning"), dict):
            body["reasoning"] = {k: v for k, v in body["reasoning"].items() if k != "context"}
        body["store"] = False
        if "max_output_tokens" in body:
            body["max_output_tokens"] = min(int(body["max_output_tokens"]), cap)
        elif operators_cap:
            body["max_output_tokens"] = cap
        return body

    def copies(self, body: dict[str, Any]) -> int:
        return 1

    def cost(self, parsed: ParsedRequest, body: dict[str, Any], cap: int) -> Cost:
        prompt = len(str(body.get("input") or "")) + len(str(body.get("instructions") or ""))
        asked = int(body.get("max_output_tokens") or cap)
        return Cost(prompt // CHARS_PER_TOKEN + asked, asked, 1, 1)

    def tokenize_asks(self, model: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        return []  # vLLM's /tokenize takes chat messages, not Responses items

    def prompt_bound(self, body: dict[str, Any]) -> int:
        """The UTF-8 size of instructions, input and tools (tools twice: a template may indent
        them) plus the template's allowance: a byte-level BPE token covers at least a byte."""
        items = body.get("input")
        count = len(items) if isinstance(items, list) else 1
        size = len(msgspec.json.encode([body.get("instructions"), items]))
        size += 2 * len(msgspec.json.encode(body.get("tools")))
        return size + ITEM_BYTES * count + TEMPLATE_BYTES

    def read_answer(self, payload: bytes, copies: int) -> tuple[bytes, Answer]:
        try:
            usage = _response.decode(payload).usage
        except msgspec.DecodeError:
            return payload, Answer(None)
        return payload, Answer(usage.as_usage() if usage else None)

    def shape(self, event: SSEEvent, plan: StreamOptions, outcome: Outcome) -> list[StreamItem]:
        try:
            read = _event.decode(event.data)
        except msgspec.DecodeError:
            return [Chunk(event.data, event=event.event)]
        name = event.event or read.type.encode()
        if read.type == "error":
            message = f"The model server failed: {read.message or 'no reason given'}"
            failure = GatewayError(502, message, type="server_error", code="upstream_error")
            return [StreamFailed(failure)]
        if read.type in GENERATED:
            if outcome.first_token_at is None:
                outcome.first_token_at = time.monotonic()
            # a stream left early is accounted for what it generated: a delta per engine step,
            # at least a token each (the terminal event's usage replaces the count)
            usage = outcome.usage
            outcome.usage = Usage(usage.prompt_tokens, usage.completion_tokens + 1,
                                  usage.total_tokens + 1)  # fmt: skip
            text = read.delta if read.type == "response.output_text.delta" else ""
            return [Chunk(event.data, text if isinstance(text, str) else "", event=name)]
        if read.type in TERMINAL:
            if read.response is not None and read.response.usage is not None:
                outcome.usage = read.response.usage.as_usage()
            return [Chunk(event.data, event=name, final=True), DONE]
        return [Chunk(event.data, event=name)]


RESPONSES = ResponsesSurface()

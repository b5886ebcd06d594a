"""Reading what the model server sends back: error bodies, SSE events, usage and text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from switchboard.gateway.errors import GatewayError
from switchboard.gateway.protocol import Usage


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
    """The parts of a response or stream chunk the gateway needs; the rest is relayed as is."""

    choices: list[_Choice] = []
    usage: Usage | None = None
    error: Any = None
    """An in-band error event (vLLM reports failures inside a started stream this way)."""


@dataclass(frozen=True, slots=True)
class ChunkInfo:
    usage: Usage | None
    text: str
    """Text of the first choice (what the chat shows)."""
    generated: bool
    """Some choice carries generated text or a tool-call delta (time to first token)."""
    usage_only: bool
    """The final chunk that only reports usage."""


def peek(payload: bytes) -> _Peek | None:
    try:
        return msgspec.json.decode(payload, type=_Peek)
    except msgspec.DecodeError:  # not JSON, or not shaped like a chunk: relayed untouched
        return None


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


def without_usage(data: bytes) -> bytes:
    """The chunk without its ``usage`` (asked from the model server for accounting only)."""
    decoded = msgspec.json.decode(data)
    decoded.pop("usage", None)
    return msgspec.json.encode(decoded)


def upstream_error(status: int, payload: bytes) -> GatewayError:
    """Relay a model server's 4xx/5xx in OpenAI's shape, whichever error shape it used."""
    message, err_type, code, param = f"model server answered {status}", None, None, None
    try:
        body = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        body = None
    if isinstance(body, dict):
        inner: Any = body
        while isinstance(inner.get("error"), dict):  # {"error": {...}}, or nested once more
            inner = inner["error"]
        message = str(inner.get("message") or message)
        err_type = inner.get("type")
        code = inner.get("code")
        param = inner.get("param")
    if status >= 500:
        return GatewayError(
            502, f"The model server failed: {message}", type="server_error", code="upstream_error"
        )
    return GatewayError(
        status,
        message,
        type=str(err_type) if isinstance(err_type, str) else "invalid_request_error",
        code=str(code) if code is not None and not isinstance(code, int) else None,
        param=str(param) if param is not None else None,
    )


class SSEEvents:
    """Split a byte stream into the ``data:`` payloads of complete SSE events, as they arrive."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buffer += chunk
        if b"\n\n" not in self._buffer and b"\r\n\r\n" not in self._buffer:
            return []
        *events, self._buffer = self._buffer.replace(b"\r\n", b"\n").split(b"\n\n")
        return [data for event in events if (data := event_data(event)) is not None]


def event_data(event: bytes) -> bytes | None:
    """The ``data:`` payload of one event (single-line data, as OpenAI servers send)."""
    for line in event.splitlines():
        if line.startswith(b"data:"):
            return line[5:].strip()
    return None

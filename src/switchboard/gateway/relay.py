"""Reading what the model server sends back: error bodies, usage, SSE events."""

from __future__ import annotations

from typing import Any

import msgspec

from switchboard.gateway.errors import GatewayError
from switchboard.gateway.protocol import Usage

DONE_EVENT = b"data: [DONE]\n\n"


class _Peek(msgspec.Struct):
    """The parts of a response or stream chunk the gateway needs; the rest is relayed as is."""

    choices: list[msgspec.Raw] = []
    usage: Usage | None = None


class _ChoiceText(msgspec.Struct):
    text: str | None = None
    delta: dict[str, Any] | None = None


def peek(payload: bytes) -> _Peek | None:
    try:
        return msgspec.json.decode(payload, type=_Peek)
    except msgspec.DecodeError:
        return None


def has_text(choice: msgspec.Raw) -> bool:
    """Whether a stream choice carries generated text (for time-to-first-token)."""
    try:
        decoded = msgspec.json.decode(choice, type=_ChoiceText)
    except msgspec.DecodeError:
        return False
    if decoded.text:
        return True
    return bool(decoded.delta and decoded.delta.get("content"))


def upstream_error(status: int, payload: bytes) -> GatewayError:
    """Relay a model server's 4xx/5xx in OpenAI's shape, whichever error shape it used."""
    message, err_type, code, param = f"model server answered {status}", None, None, None
    try:
        body = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        body = None
    if isinstance(body, dict):
        nested = body.get("error")
        inner: dict[str, Any] = nested if isinstance(nested, dict) else body
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
    """Split a byte stream into complete SSE events (``...\\n\\n``), as they arrive."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buffer += chunk
        if b"\n\n" not in self._buffer:
            return []
        *events, self._buffer = self._buffer.replace(b"\r\n", b"\n").split(b"\n\n")
        return [event + b"\n\n" for event in events if event.strip()]

    def rest(self) -> bytes:
        return self._buffer


def event_data(event: bytes) -> bytes | None:
    """The ``data:`` payload of one event (single-line data, as OpenAI servers send)."""
    for line in event.splitlines():
        if line.startswith(b"data:"):
            return line[5:].strip()
    return None

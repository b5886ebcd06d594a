"""What a streamed completion yields: typed items, one encoding per surface.

The service yields these; ``/v1`` encodes them as server-sent events (routes.py) and the browser
chat renders them as HTML. Nothing parses back what another layer encoded.
"""

from __future__ import annotations

from dataclasses import dataclass

from switchboard.gateway.errors import GatewayError


@dataclass(frozen=True, slots=True)
class Chunk:
    """One chunk of the answer: ``data`` is its JSON exactly as the caller receives it."""

    data: bytes
    text: str = ""
    """Text generated for the first choice in this chunk (what the chat shows)."""
    event: bytes | None = None
    """The server-sent event's name (the Responses and Messages APIs name theirs)."""
    final: bool = False
    """It carries the whole answer (the Responses API's terminal event)."""


@dataclass(frozen=True, slots=True)
class StreamFailed:
    """The stream broke off (model server error, timeout): always the last item."""

    error: GatewayError


@dataclass(frozen=True, slots=True)
class StreamDone:
    """The answer is complete: always the last item of a stream that did not fail."""


DONE = StreamDone()
StreamItem = Chunk | StreamFailed | StreamDone

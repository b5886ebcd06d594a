"""X-Request-ID: taken from the caller when it looks sane, minted otherwise, kept in the scope for
logs and error pages, and echoed on every response (404s from routing included: ``before_send``
runs for all of them, where route middleware would not)."""

from __future__ import annotations

import os
import re
from typing import Any

from litestar.types import Message, Scope

HEADER = b"x-request-id"
_SANE = re.compile(rb"^[A-Za-z0-9._:-]{8,128}$")


def request_id_of(scope: Scope | dict[str, Any]) -> str:
    """The request's id, minted on first use."""
    state: dict[str, Any] = scope.setdefault("state", {})
    request_id = state.get("request_id")
    if request_id is None:
        incoming = next((value for name, value in scope.get("headers", ()) if name == HEADER), b"")
        request_id = incoming.decode() if _SANE.match(incoming) else os.urandom(16).hex()
        state["request_id"] = request_id
    return str(request_id)


async def add_request_id_header(message: Message, scope: Scope) -> None:
    """Litestar ``before_send`` hook."""
    if message["type"] == "http.response.start":
        headers = list(message.get("headers", []))
        headers.append((HEADER, request_id_of(scope).encode()))
        message["headers"] = headers

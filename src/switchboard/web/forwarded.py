"""The real client behind a reverse proxy: ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are
believed only when the peer is one of ``SWITCHBOARD_TRUSTED_PROXIES``.

The client is the rightmost address in ``X-Forwarded-For`` that is not itself a trusted proxy
(each proxy appends the address it saw; anything left of that came from the client and may be
forged). The ASGI scope's ``client`` and ``scheme`` are rewritten, so every reader (sign-in
throttle, access log, the metrics loopback check) sees the same answer.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any, cast

from litestar.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _is_trusted(text: str, trusted: Sequence[Network]) -> bool:
    address = _address(text)
    return address is not None and any(address in network for network in trusted)


def real_client(peer: str, forwarded_for: str, trusted: Sequence[Network]) -> str:
    """The client's address given the peer and the ``X-Forwarded-For`` header's value."""
    if not _is_trusted(peer, trusted):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            address = _address(hop)
            return str(address) if address is not None else peer
    first = _address(hops[0]) if hops else None  # every hop a proxy: the farthest one
    return str(first) if first is not None else peer


def seen_through_proxies(scope: Scope, trusted: Sequence[Network]) -> Scope:
    """``scope``, or a copy with the real client and scheme when the peer is a trusted proxy."""
    client = scope.get("client")
    if (
        trusted
        and scope["type"] in ("http", "websocket")
        and client
        and _is_trusted(client[0], trusted)
    ):
        return cast("Scope", _rewritten(dict(scope), client[0], trusted))
    return scope


def _rewritten(scope: dict[str, Any], peer: str, trusted: Sequence[Network]) -> dict[str, Any]:
    headers = {
        name.lower(): value.decode("latin-1")
        for name, value in scope.get("headers", [])
        if name.lower() in (b"x-forwarded-for", b"x-forwarded-proto")
    }
    scope["client"] = (real_client(peer, headers.get(b"x-forwarded-for", ""), trusted), 0)
    proto = headers.get(b"x-forwarded-proto", "").split(",")[0].strip().lower()
    if proto in ("http", "https"):
        scope["scheme"] = proto if scope["type"] == "http" else proto.replace("http", "ws")
    return scope


class ForwardedHeaders:
    def __init__(self, app: ASGIApp, trusted: Sequence[Network]) -> None:
        self.app = app
        self.trusted = tuple(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(seen_through_proxies(scope, self.trusted), receive, send)

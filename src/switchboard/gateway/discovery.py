"""Which model servers the configured URLs stand for: an ``http://`` name stands for every
address it has *now*.

A compose service scaled to several replicas, or a Kubernetes headless Service, answers one
name with one address per replica, and the set changes as replicas come and go. The pool looks
the names up again at every probe round and keeps one server per address: each is probed,
balanced and ejected on its own, and its requests still carry the name in ``Host``. A name with
one address (vLLM's router, a ClusterIP Service, a compose alias) is the same with one server.

Only ``http://`` names are expanded: over ``https://`` the certificate names the host, so the
connection must be made to the name (the HTTP client's resolver looks it up again for new
connections, every ten seconds at most, as for any name).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import httpx

from switchboard.gateway.answers import ModelCard

log = logging.getLogger(__name__)

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> addresses``; raises ``OSError`` when the name does not resolve."""


@dataclass
class UpstreamServer:
    base_url: str
    """Where requests go: the configured URL, or that URL with one address of its name."""
    healthy: bool = False
    """In rotation: requests go to it."""
    answering: bool = False
    """Its last probe succeeded (readiness): a server drops out of rotation only after
    several failures in a row (probing.py)."""
    failures: int = 0
    """Failed probes in a row."""
    models: dict[str, ModelCard] = field(default_factory=dict)
    last_error: str = "not probed yet"
    checked_at: float = 0.0
    url: str = ""
    """The URL as configured (``SWITCHBOARD_UPSTREAM_URLS``); ``base_url`` when empty."""
    address: str | None = None
    """The address of ``url``'s name this server stands for (None: not looked up)."""

    urls: dict[str, httpx.URL] = field(default_factory=dict)
    """Its URL per path, parsed once (``url_for``)."""

    def __post_init__(self) -> None:
        self.url = self.url or self.base_url

    def url_for(self, path: str) -> httpx.URL:
        """``base_url`` + ``path``, parsed once."""
        url = self.urls.get(path)
        if url is None:
            url = self.urls[path] = httpx.URL(self.base_url + path)
        return url

    @property
    def origin(self) -> str:
        """The server root (vLLM answers ``/health`` and ``/metrics`` there, not under ``/v1``)."""
        return self.base_url.removesuffix("/v1")

    @property
    def headers(self) -> dict[str, str]:
        """Sent with every request: the configured name as ``Host`` when connecting to one of
        its addresses (a proxy in front of the replicas may route by it)."""
        return {"Host": host_header(self.url)} if self.address else {}

    @property
    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """``headers``, encoded for a request built by hand."""
        return [(name.lower().encode(), value.encode()) for name, value in self.headers.items()]

    @property
    def label(self) -> str:
        """How logs and ``/readyz`` name it: the configured URL, and the address if any."""
        return f"{self.url} ({self.address})" if self.address else self.url


class Discovery:
    """The servers of the configured URLs, as their names resolve at the last lookup."""

    def __init__(self, urls: list[str], resolver: Resolver, timeout: float) -> None:
        self.urls = urls
        self.servers = [UpstreamServer(url) for url in urls]
        self.resolver = resolver
        self.timeout = timeout
        self._resolving = asyncio.Lock()
        self._lookups: dict[tuple[str, int], asyncio.Future[list[str]]] = {}

    def aclose(self) -> None:
        for lookup in self._lookups.values():
            lookup.cancel()
        self._lookups.clear()

    async def resolve(self) -> None:
        """One server per address of each ``http://`` name, as the name resolves now. A server
        whose address stays keeps its state; a new one starts unhealthy (until its probe) but
        knowing the URL's models, so that a request meanwhile is a 503, not a 404. A failed
        lookup keeps the servers as they were: a DNS blip must not empty the pool."""
        async with self._resolving:
            servers: list[UpstreamServer] = []
            for url in self.urls:
                current = [s for s in self.servers if s.url == url]
                addresses = await self._addresses(url, current)
                if addresses is None:
                    servers += current
                    continue
                kept = {s.address: s for s in current if s.address}
                known = {m: card for s in current for m, card in s.models.items()}
                for address in addresses:
                    server = kept.get(address) or UpstreamServer(
                        with_address(url, address), models=dict(known), url=url, address=address
                    )
                    servers.append(server)
            self.servers = servers  # one assignment: requests iterate the list they were given

    async def _addresses(self, url: str, current: list[UpstreamServer]) -> list[str] | None:
        """The addresses of ``url``'s name now, or None to leave its servers alone."""
        name = name_to_resolve(url)
        if name is None:
            return None
        before = [s.address for s in current if s.address]
        try:
            addresses = await self._lookup(name)
        except (OSError, TimeoutError) as exc:
            if before:  # a name that never resolved stays as it is, for the HTTP client
                log.warning("upstream %s: looking up %s failed (%r); keeping %s", url, name[0],
                            exc, before)  # fmt: skip
            return None
        if not addresses:
            return None
        if addresses != before:
            log.info("upstream %s: %s resolves to %s (was %s)", url, name[0], addresses,
                     before or "not looked up")  # fmt: skip
        return addresses

    async def _lookup(self, name: tuple[str, int]) -> list[str]:
        """The resolver's answer within ``timeout``. A lookup still running is not started
        again but waited for at the next round: the system resolver blocks a thread for as
        long as its DNS servers take (seen: several seconds a name, in compose), and one new
        thread per round would pile up."""
        pending = self._lookups.get(name)
        if pending is None:
            pending = self._lookups[name] = asyncio.ensure_future(self.resolver(*name))
        try:
            return await asyncio.wait_for(asyncio.shield(pending), self.timeout)
        finally:
            if pending.done():
                del self._lookups[name]


async def lookup(host: str, port: int) -> list[str]:
    """The name's addresses, as the system resolver gives them: IPv4 when it has any (a
    dual-stack name would otherwise count every replica twice), else IPv6; sorted, so that the
    order of the servers does not change with the resolver's rotation."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    by_family: dict[int, set[str]] = {}
    for family, _, _, _, address in infos:
        by_family.setdefault(family, set()).add(str(address[0]))
    found = by_family.get(socket.AF_INET) or by_family.get(socket.AF_INET6) or set()
    return sorted(found, key=ipaddress.ip_address)


def name_to_resolve(url: str) -> tuple[str, int] | None:
    """``(host, port)`` when ``url`` is ``http://`` with a DNS name for host, else None (an
    address is used as it is; an https name is left to the HTTP client, see above)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return None
    try:
        ipaddress.ip_address(parts.hostname)
    except ValueError:
        return parts.hostname, parts.port or 80
    return None


def with_address(url: str, address: str) -> str:
    """``url`` with its host replaced by ``address`` (bracketed when IPv6), port kept."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def host_header(url: str) -> str:
    """What ``Host`` says for ``url``: its host and explicit port, as an HTTP client sends it."""
    return urlsplit(url).netloc.rsplit("@", 1)[-1]

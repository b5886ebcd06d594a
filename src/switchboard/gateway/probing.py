"""Is a model server up, and what does it serve? One probe per server and round.

``GET /v1/models`` answers both for vLLM. vLLM's router forwards it to one replica, though, and
in the seconds before its own health checks notice a replica that died, it may forward it
there and answer 500 while the other replicas serve every completion (the router retries those
on a live one). The router answers ``GET /readiness`` itself, from its view of the replicas
(200 while one is healthy, 503 when none is): where a server answers it, that decides, and the
model list only says what is served (the last one known stays when it fails). vLLM answers 404
there, so for a plain vLLM the model list decides, as it always did.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import httpx
import msgspec

from switchboard.gateway.answers import ModelCard
from switchboard.gateway.discovery import UpstreamServer

log = logging.getLogger(__name__)


class _UpstreamModel(msgspec.Struct):
    id: str
    created: int = 0
    max_model_len: int | None = None


class _UpstreamModelList(msgspec.Struct):
    data: list[_UpstreamModel]


DROP_AFTER = 2
"""Failed probes in a row that take a server out of rotation, unless it is the last in rotation
for one of its models. One is a blip as often as not (seen: connections stalling for seconds
while the container network was reconfigured), and a server really gone fails its requests
meanwhile anyway, each retried on another server when it never reached this one; readiness
follows every single probe."""


async def probe(
    client: httpx.AsyncClient,
    server: UpstreamServer,
    within: httpx.Timeout,
    *,
    last: Callable[[], bool],
) -> bool:
    """Probe ``server`` now; update whether it answers (readiness), whether it is in rotation
    (``healthy``: at once when it answers; after DROP_AFTER failures when not, unless it is
    ``last()`` in rotation for one of its models, asked once the answers are in: servers probed
    together that all fail leave one), its models and last error; return whether it
    answered.

    The last server stays: taking it out turns a blip (a router whose CPU was starved for a
    moment, a stalled network) into instant 503s for everyone until the next probe, while
    keeping it costs, when it is really gone, a request's connect retries before its 503."""
    answer, routed = await asyncio.gather(
        _models(client, server, within), _router_ready(client, server, within)
    )
    listed, failure = (None, answer) if isinstance(answer, Exception) else (answer, None)
    if routed is None:  # a model server itself: its model list decides
        healthy, why = failure is None, why_down(failure) if failure else ""
    elif not routed:
        healthy, why = False, "status 503 (the router has no healthy replica)"
    elif listed is None and not server.models:
        healthy, why = False, f"no model list yet ({why_down(failure) if failure else ''})"
    else:
        healthy, why = True, ""
    server.failures = 0 if healthy else server.failures + 1
    in_rotation = healthy or (server.healthy and (server.failures < DROP_AFTER or last()))
    if in_rotation and not server.healthy:
        log.info("upstream %s is up, serving %s", server.label, sorted(listed or server.models))
    elif server.healthy and not in_rotation:
        log.warning("upstream %s is down (%d probes in a row): %s", server.label,
                    server.failures, why)  # fmt: skip
    elif server.answering and not healthy:
        log.warning("upstream %s did not answer its probe: %s", server.label, why)
    if listed is not None:
        server.models = listed
    server.answering, server.healthy, server.last_error = healthy, in_rotation, why
    server.checked_at = time.monotonic()
    return healthy


async def _models(
    client: httpx.AsyncClient, server: UpstreamServer, within: httpx.Timeout
) -> dict[str, ModelCard] | httpx.HTTPError | msgspec.DecodeError:
    """The models the server lists, or why it did not."""
    try:
        response = await client.get(f"{server.base_url}/models", headers=server.headers,
                                    timeout=within)  # fmt: skip
        response.raise_for_status()
        listed = msgspec.json.decode(response.content, type=_UpstreamModelList)
    except (httpx.HTTPError, msgspec.DecodeError) as exc:
        return exc
    return {
        m.id: ModelCard(id=m.id, created=m.created, max_model_len=m.max_model_len)
        for m in listed.data
    }


async def _router_ready(
    client: httpx.AsyncClient, server: UpstreamServer, within: httpx.Timeout
) -> bool | None:
    """vLLM's router's own verdict (``/readiness`` at the server root), or None where the
    server is no router (404 or anything else: its model list decides). Asked at every round:
    a name's address may change from one to the other."""
    try:
        response = await client.get(f"{server.origin}/readiness", headers=server.headers,
                                    timeout=within)  # fmt: skip
    except httpx.HTTPError:
        return None
    if response.status_code == 200:
        return True
    if response.status_code == 503:
        return False
    return None


def why_down(exc: Exception) -> str:
    """A failed probe in a few words (``/readyz`` shows it): the status a server answered, or
    the kind of failure."""
    if isinstance(exc, httpx.HTTPStatusError):
        return f"status {exc.response.status_code}"
    if isinstance(exc, msgspec.DecodeError):
        return "answered something other than a model list"
    return f"unreachable: {type(exc).__name__}"

"""The floor of the gateway's stack: a bare Litestar app relaying ``POST /v1/chat/completions``
to the upstream with httpx on the aiohttp transport (no auth, limits, accounting or logging).

``make bench-gateway`` serves it with granian next to the gateway, so the report can say how
much of the gateway's cost is its own and how much the framework's. Run:
``granian --interface asgi --factory loadtests.bare_proxy:create_app`` with ``UPSTREAM`` set.
With ``BARE_HEAP_TUNED=1`` it runs with the gateway's collector settings (web/heap.py), so that
the report can also compare like with like.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from httpx_aiohttp import AiohttpTransport
from litestar import Litestar, Request, Response, post
from litestar.datastructures import State
from litestar.response import Stream

from switchboard.web.heap import tuned_for_serving


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    async with httpx.AsyncClient(
        base_url=os.environ.get("UPSTREAM", "http://127.0.0.1:8001"),
        transport=AiohttpTransport(),
        timeout=60,
    ) as client:
        app.state.client = client
        if os.environ.get("BARE_HEAP_TUNED") == "1":
            with tuned_for_serving():
                yield
        else:
            yield


@post("/v1/chat/completions")
async def relay(request: Request[object, object, State], state: State) -> Response[bytes] | Stream:
    body = await request.body()
    client: httpx.AsyncClient = state.client
    upstream = client.build_request(
        "POST", "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    response = await client.send(upstream, stream=True)
    if response.headers.get("content-type", "").startswith("text/event-stream"):

        async def events() -> AsyncIterator[bytes]:
            try:
                async for chunk in response.aiter_raw():
                    yield chunk
            finally:
                await response.aclose()

        return Stream(events(), media_type="text/event-stream")
    content = await response.aread()
    await response.aclose()
    return Response(content, status_code=response.status_code, media_type="application/json")


def create_app() -> Litestar:
    return Litestar([relay], lifespan=[lifespan], logging_config=None)

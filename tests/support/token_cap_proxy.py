"""A thin proxy in front of vLLM for the conformance suites (tests/conformance): it caps the
tokens a request may generate, as the gateway's ``SWITCHBOARD_MAX_TOKENS_CAP`` does, and seeds
the sampling of requests that name no ``seed``; nothing else changes.

The cap: the suites compare the gateway with vLLM "directly", and their tools send no
``max_tokens`` of their own (a tiny model left uncapped may write up to its whole context).
The seed: a check that reads what the model wrote (a forced tool call, a JSON answer) must get
the same text on both sides, or a lucky sample on one side reads as a difference. The gateway's
own upstream goes through one of these too (seed only), so both sides sample alike.

``python -m tests.support.token_cap_proxy UPSTREAM PORT [--cap N] [--seed S]``. A JSON object
POSTed to ``…/chat/completions`` or ``…/completions`` gets ``max_tokens``/
``max_completion_tokens`` lowered to N (``max_tokens: N`` when it names neither); to
``…/responses``, ``max_output_tokens``. A value that is not an integer is left for vLLM to judge.
Bodies, statuses and headers are relayed as they are, streams as they come.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

HOP_BY_HOP = frozenset(
    ("connection", "keep-alive", "transfer-encoding", "content-length", "host", "upgrade",
     "proxy-connection", "te", "trailer", "content-encoding")
)  # fmt: skip
CAPPED = {
    "/chat/completions": ("max_tokens", "max_completion_tokens"),
    "/completions": ("max_tokens",),
    "/responses": ("max_output_tokens",),
}
"""Path ending → the fields that bound generation there (the first is set when none is)."""


def shaped_body(path: str, raw: bytes, cap: int | None, seed: int | None) -> bytes:
    """``raw`` with its token fields within ``cap`` and ``seed`` set where it names none;
    unchanged when it is not a JSON object sent to a generating endpoint."""
    fields = next((names for end, names in CAPPED.items() if path.endswith(end)), None)
    if fields is None:
        return raw
    try:
        body = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(body, dict):
        return raw
    if cap is not None:
        named = False
        for name in fields:
            value = body.get(name)
            if value is not None:
                named = True
                if isinstance(value, int) and not isinstance(value, bool):
                    body[name] = min(value, cap)
        if not named:
            body[fields[0]] = cap
    if seed is not None and body.get("seed") is None:
        body["seed"] = seed
    return json.dumps(body).encode()


def make_app(upstream: str, cap: int | None, seed: int | None) -> web.Application:
    """The proxy: a request to ``/v1/…`` goes to ``upstream`` + ``/…`` (``upstream`` ends in
    /v1, as the gateway's ``SWITCHBOARD_UPSTREAM_URLS``), anything else to its root."""
    upstream = upstream.rstrip("/")
    root = upstream.removesuffix("/v1")

    def target(path: str) -> str:
        return upstream + path.removeprefix("/v1") if path.startswith("/v1/") else root + path

    async def relay(request: web.Request) -> web.StreamResponse:
        session: aiohttp.ClientSession = request.app["session"]
        raw = await request.read()
        if request.method == "POST":
            raw = shaped_body(request.path, raw, cap, seed)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        async with session.request(
            request.method, target(request.path_qs), data=raw, headers=headers
        ) as answer:
            response = web.StreamResponse(status=answer.status, reason=answer.reason)
            for name, value in answer.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    response.headers.add(name, value)
            await response.prepare(request)
            async for chunk in answer.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def session_context(app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
            app["session"] = session
            yield

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.cleanup_ctx.append(session_context)
    app.router.add_route("*", "/{tail:.*}", relay)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("upstream", help="vLLM's base URL (with /v1)")
    parser.add_argument("port", type=int)
    parser.add_argument("--cap", type=int, help="the most tokens a request may generate")
    parser.add_argument("--seed", type=int, help="the seed of requests that name none")
    args = parser.parse_args()
    app = make_app(args.upstream, args.cap, args.seed)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()

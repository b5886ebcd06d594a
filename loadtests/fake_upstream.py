"""An instant OpenAI-compatible upstream for benchmarks that isolate the gateway's own cost.

Answers /health, /v1/models, /v1/chat/completions (JSON, or a short SSE stream) with no delay.
The model ``bench-paced`` streams like a real model instead: the role chunk, then a token every
PACE seconds, so the time to the first token measures what a proxy adds to it; ``bench-long``
streams a hundred tokens at 20 a second (the long streams of ``bench_limits.py``).
Run: python loadtests/fake_upstream.py PORT
"""

from __future__ import annotations

import asyncio
import json
import sys

from aiohttp import web

MODEL = "bench-model"
USAGE = {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20}
ANSWER = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "an instant answer"},
                "finish_reason": "stop",
            }
        ],
        "usage": USAGE,
    }
).encode()


def chunk(delta: dict[str, str], usage: dict[str, int] | None = None) -> bytes:
    choices = [] if usage else [{"index": 0, "delta": delta, "finish_reason": None}]
    body = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": MODEL,
        "choices": choices,
        "usage": usage,
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


STREAM = b"".join(
    [chunk({"role": "assistant", "content": ""})]
    + [chunk({"content": f"word{i} "}) for i in range(8)]
    + [chunk({}, USAGE), b"data: [DONE]\n\n"]
)


async def health(_: web.Request) -> web.Response:
    return web.Response(text="")


PACED = "bench-paced"
PACE = 0.1
LONG = "bench-long"
LONG_WORDS, LONG_PACE = 100, 0.05
"""A long answer at 20 tokens a second, as a real model streams: 5 seconds."""


async def models(_: web.Request) -> web.Response:
    cards = [{"id": name, "object": "model"} for name in (MODEL, PACED, LONG)]
    return web.json_response({"object": "list", "data": cards})


async def paced(response: web.StreamResponse, words: int = 3, pace: float = PACE) -> None:
    await response.write(chunk({"role": "assistant", "content": ""}))
    for word in range(words):
        await asyncio.sleep(pace)
        await response.write(chunk({"content": f"word{word} "}))
    await response.write(chunk({}, USAGE) + b"data: [DONE]\n\n")


async def chat(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    if not body.get("stream"):
        return web.Response(body=ANSWER, content_type="application/json")
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    if body.get("model") == PACED:
        await paced(response)
    elif body.get("model") == LONG:
        await paced(response, LONG_WORDS, LONG_PACE)
    else:
        await response.write(STREAM)
    await response.write_eof()
    return response


def main() -> None:
    app = web.Application()
    app.add_routes(
        [
            web.get("/health", health),
            web.get("/v1/models", models),
            web.post("/v1/chat/completions", chat),
        ]
    )
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()

"""The fake model server on a real socket (granian, in a thread), for what a mock transport
cannot show: the real client's timeouts and hang-ups. The same ``FakeUpstream`` answers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import httpx

from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer, Message, Receive, Send


class OverSocket:
    """``FakeUpstream`` as an ASGI app."""

    def __init__(self, fake: FakeUpstream) -> None:
        self.fake = fake

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        request = httpx.Request(
            scope["method"],
            f"http://upstream.test{scope['path']}",
            content=body,
            headers=scope.get("headers", []),
        )
        response = await self.fake.handle(request)
        headers = [
            (k.lower().encode(), v.encode())
            for k, v in response.headers.items()
            if k.lower() not in ("content-length", "transfer-encoding")
        ]
        await send(
            {"type": "http.response.start", "status": response.status_code, "headers": headers}
        )
        stream: Any = response.stream

        async def relay() -> None:
            async for chunk in stream:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        # as vLLM does (its with_cancellation): a client that hangs up aborts the generation
        relaying, hang_up = asyncio.ensure_future(relay()), asyncio.ensure_future(receive())
        try:
            await asyncio.wait((relaying, hang_up), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (relaying, hang_up):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            with contextlib.suppress(Exception):
                await stream.aclose()


@contextlib.contextmanager
def upstream_on_socket(fake: FakeUpstream) -> Iterator[str]:
    """Serve ``fake`` on a free port; yield its base URL (``.../v1``)."""
    # LiveServer serves any ASGI app; it is typed Litestar for the tests that reach app.state
    server = LiveServer(OverSocket(fake))  # type: ignore[arg-type]
    server.start()
    try:
        yield f"{server.url}/v1"
    finally:
        server.stop()

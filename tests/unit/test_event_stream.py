"""``event_stream``: a live completion sent as server-sent events from the request's own task.

The stream's end goes out before the books close (the caller does not wait for our accounting),
the upstream is still read to its end and the books closed after it, a caller who hangs up has
the stream closed as an abort, and a short stream never listens for the hang-up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import cast

from litestar import Request
from litestar.types import HTTPDisconnectEvent, HTTPScope, Message

from switchboard.gateway.chunks import DONE, Chunk, StreamItem
from switchboard.gateway.event_stream import event_stream
from switchboard.gateway.routes import sse_event
from switchboard.web.disconnect import WATCH_AFTER

SCOPE = cast("HTTPScope", {"type": "http", "method": "POST", "headers": [], "query_string": b""})


class Caller:
    """The ASGI side of one request: what was sent, and a ``receive`` that reports a hang-up
    after ``hangs_up_after`` seconds (never, if None)."""

    def __init__(self, journal: list[str], hangs_up_after: float | None = None) -> None:
        self.journal = journal
        self.hangs_up_after = hangs_up_after
        self.receives = 0

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.journal.append(f"start {message['status']}")
        elif message["type"] == "http.response.body" and message.get("more_body"):
            self.journal.append(f"body {message['body'].decode()!r}")
        else:
            self.journal.append("end of the response")

    async def receive(self) -> HTTPDisconnectEvent:
        self.receives += 1
        if self.hangs_up_after is None:
            await asyncio.Event().wait()
        await asyncio.sleep(self.hangs_up_after or 0)
        return {"type": "http.disconnect"}


def relay(journal: list[str], pause: float = 0) -> AsyncGenerator[list[StreamItem], None]:
    """Stands in for the gateway's relay: two chunks, then the end; what runs after the end is
    the upstream read to its end and the books closed."""

    async def batches() -> AsyncGenerator[list[StreamItem], None]:
        try:
            for word in ("one", "two"):
                await asyncio.sleep(pause)
                yield [Chunk(b'"' + word.encode() + b'"')]
            yield [DONE]
            journal.append("upstream read to its end")
        except (GeneratorExit, asyncio.CancelledError):  # closed, or cancelled in a read
            journal.append("stream closed before its end")
            raise
        finally:
            journal.append("books closed")

    return batches()


async def respond(batches: AsyncGenerator[list[StreamItem], None], caller: Caller) -> None:
    response = event_stream(batches, sse_event, {"x-test": "1"})
    asgi = response.to_asgi_response(app=None, request=Request(SCOPE))
    await asyncio.wait_for(asgi(SCOPE, caller.receive, caller.send), timeout=30)


async def test_the_end_goes_out_before_the_books_close_and_the_upstream_is_read_to_its_end() -> (
    None
):
    journal: list[str] = []
    await respond(relay(journal), Caller(journal))
    assert journal == [
        "start 200",
        "body 'data: \"one\"\\n\\n'",
        "body 'data: \"two\"\\n\\n'",
        "body 'data: [DONE]\\n\\n'",
        "end of the response",
        "upstream read to its end",
        "books closed",
    ]


async def test_a_caller_who_hangs_up_has_the_stream_closed_before_its_end() -> None:
    journal: list[str] = []
    caller = Caller(journal, hangs_up_after=0.05)
    await respond(relay(journal, pause=WATCH_AFTER * 2), caller)
    assert "end of the response" not in journal
    assert "upstream read to its end" not in journal
    assert journal[-2:] == ["stream closed before its end", "books closed"]


async def test_a_short_stream_never_listens_for_the_hang_up() -> None:
    journal: list[str] = []
    caller = Caller(journal)
    await respond(relay(journal), caller)
    await asyncio.sleep(WATCH_AFTER * 2)  # nothing was left behind to listen later either
    assert caller.receives == 0
    assert journal[-1] == "books closed"

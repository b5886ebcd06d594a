"""A live completion as an HTTP response of server-sent events, for every ``/v1`` surface.

The events are sent from the request's own task, each batch in one send. Litestar's ``Stream``
runs them in a task group beside a task that listens for the hang-up; here the hang-up is watched
only once the stream has lasted ``WATCH_AFTER`` (web/disconnect.py), as for a JSON answer, so a
short stream pays for no extra task.

The response ends as soon as its last event (the end, or a failure) has gone out. What follows
it — reading the upstream body to its end, closing the books — runs after that, so the caller is
not kept waiting for our accounting. A caller who hangs up before the end has its upstream
request closed instead (vLLM aborts the generation), booked as an abort.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from litestar.response import Stream
from litestar.response.streaming import ASGIStreamingResponse

from switchboard.gateway.chunks import Chunk, StreamItem
from switchboard.web.disconnect import ClientDisconnected, until_disconnect

if TYPE_CHECKING:
    from litestar import Litestar, Request
    from litestar.background_tasks import BackgroundTask, BackgroundTasks
    from litestar.datastructures import Cookie
    from litestar.enums import MediaType
    from litestar.response.base import ASGIResponse
    from litestar.types import Receive, Send, TypeEncodersMap

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
Batches = AsyncGenerator[list[StreamItem], None]


class EventStreamBody(ASGIStreamingResponse):
    """Sends the body from the request's task (no task group), then runs ``after``."""

    __slots__ = ("after",)

    def __init__(self, *, after: Callable[[], Awaitable[None]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.after = after

    async def send_body(self, send: Send, receive: Receive) -> None:
        events = self.iterator

        async def body() -> None:
            async for chunk in events:
                assert isinstance(chunk, bytes)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        try:
            await until_disconnect(receive, body())
        except ClientDisconnected:
            pass  # the status already went out: nothing to tell the caller
        finally:
            if isinstance(events, AsyncGenerator):
                await events.aclose()  # after a hang-up: closes the upstream, books an abort
            await self.after()


class EventStream(Stream):
    """A ``Stream`` whose ASGI response is an ``EventStreamBody``."""

    __slots__ = ("after",)

    def __init__(
        self,
        content: AsyncIterator[bytes],
        after: Callable[[], Awaitable[None]],
        headers: dict[str, str],
    ) -> None:
        super().__init__(content, media_type="text/event-stream", headers=headers)
        self.after = after

    def to_asgi_response(
        self,
        app: Litestar | None,
        request: Request[Any, Any, Any],
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: MediaType | str | None = None,
        status_code: int | None = None,
        type_encoders: TypeEncodersMap | None = None,
    ) -> ASGIResponse:
        return EventStreamBody(
            after=self.after,
            iterator=self.iterator,
            background=self.background or background,
            cookies=[*self.cookies, *(cookies or ())],
            encoded_headers=encoded_headers,
            headers={**(headers or {}), **self.headers},
            is_head_response=is_head_response,
            media_type=str(self.media_type),
            status_code=self.status_code or status_code,
        )


def event_stream(
    batches: Batches, encode: Callable[[StreamItem], bytes], headers: dict[str, str]
) -> EventStream:
    """``batches`` (which own the upstream request and the books) as a streamed response, each
    item written by ``encode`` and each batch in one send."""
    sent_last = False

    async def events() -> AsyncIterator[bytes]:
        """A hang-up or a failed send ends this early; ``finish`` then closes ``batches``."""
        nonlocal sent_last
        async for batch in batches:
            yield b"".join([encode(item) for item in batch])
            if batch and not isinstance(batch[-1], Chunk):  # the end, or a failure
                sent_last = True
                return  # the response ends here; ``finish`` closes the rest after it

    async def finish() -> None:
        """After the response: the rest of the stream (the upstream body's end, then the books)
        once the last event went out; else (a hang-up) close it, which aborts it."""
        try:
            if sent_last:
                async for _ in batches:
                    pass
        finally:
            await batches.aclose()

    return EventStream(events(), finish, {**SSE_HEADERS, **headers})

"""Relaying one streamed completion from the model server, a batch of typed items per read.

The service opens the upstream request (a refused one is still an HTTP error for the caller)
and hands ``relay`` what it opened: the upstream response and the request's books, in one exit
stack. ``relay`` owns them from then on: closing it (``aclose``, or the end of the stream)
closes the upstream request and the books — the tokens really generated (vLLM reports them in
every chunk) settle the reservation even when the client hangs up or the model server fails.

Every network read becomes one batch (``list[StreamItem]``): ``/v1`` writes it in one send.
Each event is read once, by the request's surface (surface.py), and changed only where it must
be.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx

from switchboard.gateway.accounting import Outcome, Ticket
from switchboard.gateway.answers import Usage
from switchboard.gateway.chunks import DONE, Chunk, StreamFailed, StreamItem
from switchboard.gateway.errors import GatewayError, upstream_timeout
from switchboard.gateway.protocol import StreamOptions
from switchboard.gateway.sse import SSEEvents
from switchboard.gateway.surface import Surface
from switchboard.gateway.upstream import timed_out
from switchboard.observability.metrics import ACTIVE_STREAMS, UPSTREAM_ERRORS
from switchboard.settings import Settings

StoreAnswer = Callable[[list[bytes], Usage], Awaitable[None]]
AnswerHook = Callable[[bytes], Awaitable[None]]
Batch = list[StreamItem]


@dataclass(frozen=True)
class StreamPlan:
    """How to relay one stream for its caller."""

    include_usage: bool
    """The caller asked for the final usage chunk."""
    continuous_usage: bool
    """The caller asked for usage in every chunk (we always ask the model server for it)."""
    deadline: float
    """``time.monotonic()`` after which the stream is cut with a 504 event."""
    first_byte_deadline: float = float("inf")
    """``time.monotonic()`` by which the first event must have come."""
    store: StoreAnswer | None = None
    """Where to keep the answer once complete (the response cache), if anywhere."""
    max_store_bytes: int = 0
    on_answer: AnswerHook | None = None
    """Given the whole answer when a chunk carries it (a stored response)."""

    @classmethod
    def starting_now(
        cls,
        options: object,
        settings: Settings,
        store: StoreAnswer | None,
        on_answer: AnswerHook | None,
    ) -> StreamPlan:
        """The plan for a stream opened now, from the request's ``stream_options``."""
        if not isinstance(options, StreamOptions):
            options = StreamOptions()
        now = time.monotonic()
        return cls(
            include_usage=bool(options.include_usage),
            continuous_usage=bool(options.include_usage and options.continuous_usage_stats),
            deadline=now + settings.upstream_total_timeout,
            first_byte_deadline=now + settings.upstream_first_byte_timeout,
            store=store,
            max_store_bytes=settings.cache_max_bytes,
            on_answer=on_answer,
        )


class InFlight:
    """Streams being relayed now, so that shutdown can let them finish — or close their books
    when they outlive the grace period."""

    def __init__(self) -> None:
        self._tickets: set[Ticket] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def count(self) -> int:
        return len(self._tickets)

    def enter(self, ticket: Ticket) -> None:
        self._tickets.add(ticket)
        self._idle.clear()
        ACTIVE_STREAMS.inc()

    def leave(self, ticket: Ticket) -> None:
        self._tickets.discard(ticket)
        ACTIVE_STREAMS.dec()
        if not self._tickets:
            self._idle.set()

    def abandon(self, status: int) -> int:
        """Close the books of every stream still running (with the tokens generated so far), so
        that their usage rows are written before the usage writer's last flush. The streams
        themselves end when the upstream pool closes."""
        for ticket in list(self._tickets):
            ticket.close(status)
        return self.count

    async def wait_idle(self, grace: float) -> bool:
        """Wait until no stream is in flight (at most ``grace`` seconds); True if none is."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace)
        return self.count == 0


async def relay(
    owned: contextlib.AsyncExitStack,
    response: httpx.Response,
    surface: Surface,
    plan: StreamPlan,
    ticket: Ticket,
    in_flight: InFlight,
) -> AsyncGenerator[Batch, None]:
    """The stream's batches, after an empty one (the start: from there, closing the generator
    closes ``owned``, the upstream response and then the books)."""
    outcome = ticket.outcome
    async with owned:
        in_flight.enter(ticket)
        try:
            yield []
            batches = _batches(response, surface, plan, outcome)
            async with contextlib.aclosing(batches):  # closed here, not by the collector
                async for batch in batches:
                    if batch[-1] is DONE:
                        outcome.delivered = True  # a hang-up from here on is not an abort
                    elif isinstance(batch[-1], StreamFailed):
                        outcome.status = batch[-1].error.status
                    yield batch
        except (httpx.HTTPError, GatewayError) as exc:  # the model server died mid-stream
            failure = _as_gateway_error(exc, outcome.model)
            outcome.status = failure.status
            yield [StreamFailed(failure)]  # told in-band: the 200 and the first chunks went out
        finally:
            in_flight.leave(ticket)


END_GRACE = 1.0
"""Seconds the model server may take to end its body after the stream's end (``[DONE]``)."""


async def _read_to_end(reads: AsyncIterator[bytes]) -> None:
    """Read what follows the stream's end (normally nothing: the body ends with the read that
    brought ``[DONE]``), so that the connection goes back to the pool and the readers finish
    rather than being left to the garbage collector (one task each to close them)."""
    try:
        async with asyncio.timeout(END_GRACE):
            async for _ in reads:
                pass
    except (TimeoutError, httpx.HTTPError):
        pass  # the connection is closed, not reused


def _loop_time(monotonic: float) -> float:
    """A ``time.monotonic()`` instant on the event loop's clock (``asyncio.timeout_at``)."""
    if monotonic == float("inf"):
        return monotonic
    return asyncio.get_running_loop().time() + monotonic - time.monotonic()


def _as_gateway_error(exc: Exception, model: str) -> GatewayError:
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, httpx.HTTPError) and timed_out(exc):
        return upstream_timeout(model)
    UPSTREAM_ERRORS.labels("stream").inc()
    why = str(exc) or type(exc).__name__
    return GatewayError(502, f"The model server failed mid-stream: {why}",
                        type="server_error", code="upstream_error")  # fmt: skip


async def _batches(
    response: httpx.Response, surface: Surface, plan: StreamPlan, outcome: Outcome
) -> AsyncGenerator[Batch, None]:
    events = SSEEvents()
    kept: list[bytes] | None = [] if plan.store else None
    kept_bytes = 0
    reads = response.aiter_raw()
    deadline = min(plan.first_byte_deadline, plan.deadline)  # until the first event comes
    while True:
        try:
            async with asyncio.timeout_at(_loop_time(deadline)):
                raw = await anext(reads)
        except StopAsyncIteration:
            break
        except TimeoutError:  # the request is closed with the stream: vLLM aborts it
            yield [StreamFailed(upstream_timeout(outcome.model))]
            return
        batch: Batch = []
        for event in events.feed(raw):
            deadline = plan.deadline
            for item in surface.shape(event, plan, outcome):
                if item is DONE:
                    if kept is not None and plan.store is not None:
                        # before the end goes out: a hang-up after it keeps the answer
                        await plan.store(kept, outcome.usage)
                    batch.append(DONE)
                    yield batch
                    await _read_to_end(reads)
                    return
                batch.append(item)
                if isinstance(item, StreamFailed):  # never cached, and the end of the stream
                    yield batch
                    return
                assert isinstance(item, Chunk)
                if item.final and plan.on_answer is not None:
                    await plan.on_answer(item.data)
                if kept is not None:
                    kept_bytes += len(item.data)
                    kept = kept if kept_bytes <= plan.max_store_bytes else None
                    if kept is not None:
                        kept.append(item.data)
        if batch:
            yield batch
    yield [
        StreamFailed(
            GatewayError(
                502,
                "The model server ended the stream before it was complete.",
                type="server_error",
                code="upstream_error",
            )
        )
    ]

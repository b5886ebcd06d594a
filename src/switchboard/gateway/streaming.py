"""Relaying one streamed completion from the model server as typed items.

``open_stream`` returns a generator that has already opened the upstream request and checked its
status (so a refused request is still an HTTP error for the caller), suspended inside the
``async with`` that owns the upstream response: closing the generator (``aclose``, or the end of
the stream) closes the upstream request, and its ``finally`` closes the request's books — the
tokens really generated (vLLM reports them in every chunk, ``continuous_usage_stats``) settle the
reservation even when the client hangs up or the model server fails mid-way.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass

import httpx

from switchboard.gateway.accounting import Outcome, Ticket
from switchboard.gateway.chunks import DONE, Chunk, StreamFailed, StreamItem
from switchboard.gateway.errors import GatewayError, upstream_timeout
from switchboard.gateway.greedy import fan_out_json
from switchboard.gateway.protocol import Usage
from switchboard.gateway.relay import (
    ChunkInfo,
    SSEEvents,
    read_chunk,
    upstream_error,
    without_usage,
)
from switchboard.gateway.upstream import timed_out
from switchboard.observability.metrics import ACTIVE_STREAMS, UPSTREAM_ERRORS

StoreAnswer = Callable[[list[bytes], Usage], Awaitable[None]]


@dataclass(frozen=True)
class StreamPlan:
    """How to relay one stream for its caller."""

    include_usage: bool
    """The caller asked for the final usage chunk."""
    continuous_usage: bool
    """The caller asked for usage in every chunk (we always ask the model server for it)."""
    deadline: float
    """``time.monotonic()`` after which the stream is cut with a 504 event."""
    store: StoreAnswer | None = None
    """Where to keep the answer once complete (the response cache), if anywhere."""
    max_store_bytes: int = 0


class _Opened:
    """First item of the internal generator: the upstream accepted the request."""


_OPENED = _Opened()


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


async def open_stream(
    opening: contextlib.AbstractAsyncContextManager[httpx.Response],
    plan: StreamPlan,
    ticket: Ticket,
    in_flight: InFlight,
) -> AsyncGenerator[StreamItem, None]:
    """Open the upstream stream now; raise ``GatewayError`` if it was refused."""
    items = _relay(opening, plan, ticket, in_flight)
    first = await anext(items)  # runs up to the upstream's answer (or raises its error)
    assert first is _OPENED
    return items  # type: ignore[return-value]  # only StreamItem follow _OPENED


async def _relay(
    opening: contextlib.AbstractAsyncContextManager[httpx.Response],
    plan: StreamPlan,
    ticket: Ticket,
    in_flight: InFlight,
) -> AsyncGenerator[StreamItem | _Opened, None]:
    outcome = ticket.outcome
    opened = False
    in_flight.enter(ticket)
    try:
        async with opening as response:
            if response.status_code >= 400:
                raise upstream_error(response.status_code, await response.aread())
            opened = True
            yield _OPENED
            async with contextlib.aclosing(_items(response, plan, outcome)) as items:
                async for item in items:
                    if isinstance(item, StreamFailed):
                        outcome.status = item.error.status
                    elif item is DONE:
                        outcome.delivered = True  # a hang-up from here on is not an abort
                    yield item
    except (asyncio.CancelledError, GeneratorExit):
        if not outcome.delivered:
            outcome.status = 499
        raise
    except Exception as exc:  # refused, timed out, or the model server died mid-stream
        failure = _as_gateway_error(exc, outcome.model)
        outcome.status = failure.status
        if not opened:
            raise failure from None
        yield StreamFailed(failure)  # told in-band: the 200 and the first chunks went out
    finally:
        in_flight.leave(ticket)
        ticket.close()


def _as_gateway_error(exc: Exception, model: str) -> GatewayError:
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, httpx.HTTPError) and timed_out(exc):
        return upstream_timeout(model)
    UPSTREAM_ERRORS.labels("stream").inc()
    why = str(exc) or type(exc).__name__
    return GatewayError(502, f"The model server failed mid-stream: {why}",
                        type="server_error", code="upstream_error")  # fmt: skip


async def _items(
    response: httpx.Response, plan: StreamPlan, outcome: Outcome
) -> AsyncGenerator[StreamItem, None]:
    events = SSEEvents()
    kept: list[bytes] | None = [] if plan.store else None
    kept_bytes = 0
    async for raw in response.aiter_raw():
        for data in events.feed(raw):
            if data == b"[DONE]":
                if kept is not None and plan.store is not None:
                    await plan.store(
                        kept, outcome.usage
                    )  # before [DONE] goes out: a hang-up after it keeps it
                yield DONE
                return
            item = _chunk(data, plan, outcome)
            if isinstance(item, StreamFailed):
                yield item  # an in-band error: never cached, and the end of the stream
                return
            if item is None:
                continue
            if kept is not None:
                kept_bytes += len(item.data)
                kept = kept if kept_bytes <= plan.max_store_bytes else None
                if kept is not None:
                    kept.append(item.data)
            yield item
        if time.monotonic() > plan.deadline:
            yield StreamFailed(upstream_timeout(outcome.model))
            return
    yield StreamFailed(
        GatewayError(
            502,
            "The model server ended the stream before it was complete.",
            type="server_error",
            code="upstream_error",
        )
    )


def _chunk(data: bytes, plan: StreamPlan, outcome: Outcome) -> Chunk | StreamFailed | None:
    """One upstream chunk as the caller gets it (``None``: nothing to send)."""
    if outcome.copies > 1:
        data = fan_out_json(data, outcome.copies)
    info = read_chunk(data)
    if isinstance(info, GatewayError):
        return StreamFailed(info)
    if info is None:
        return Chunk(data)
    return _account(data, info, plan, outcome)


def _account(data: bytes, info: ChunkInfo, plan: StreamPlan, outcome: Outcome) -> Chunk | None:
    if info.generated and outcome.first_token_at is None:
        outcome.first_token_at = time.monotonic()
    if info.usage is not None:
        outcome.usage = info.usage
        if info.usage_only:
            return Chunk(data) if plan.include_usage else None
        if not plan.continuous_usage:
            data = without_usage(data)
    return Chunk(data, info.text)

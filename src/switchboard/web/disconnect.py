"""A caller that went away before its answer, and the watch that notices it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from litestar.types import Receive

T = TypeVar("T")


class ClientDisconnected(asyncio.CancelledError):
    """Raised where a handler notices that its caller has gone. It unwinds like a cancellation
    (past every ``except Exception``: there is nobody to send an error page to), and the
    outermost wrapper (observability's access middleware) ends the request quietly as a 499,
    nginx's "client closed request", instead of letting the server log it as a crash."""


CLIENT_CLOSED_REQUEST = 499


WATCH_AFTER = 0.2
"""Seconds before an answer starts listening for the client's hang-up."""


async def until_disconnect(receive: Receive, work: Awaitable[T]) -> T:
    """``work``, cancelled (and the upstream request with it) if the client hangs up first, as
    vLLM's ``with_cancellation`` does; then ``ClientDisconnected`` (a 499 in the access log).
    ``work`` runs in this task; a watcher task cancels it when the client goes. The watcher
    starts after ``WATCH_AFTER`` seconds: an answer quicker than that (a cache hit, a short
    completion or stream) never pays for it (a task and a receive the server must cancel: a
    tenth of a quick request's time at one connection), and a hang-up is still noticed by then.
    ``receive`` is the request's ASGI receive, its body already read: only ``http.disconnect``
    can arrive."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    watchers: list[asyncio.Task[None]] = []

    def watch() -> None:
        watchers.append(loop.create_task(_cancel_on_disconnect(receive, task)))

    timer = loop.call_later(WATCH_AFTER, watch)
    try:
        return await work
    except asyncio.CancelledError:
        if watchers and watchers[0].done() and not watchers[0].cancelled():  # saw the hang-up
            raise ClientDisconnected("client disconnected") from None
        raise
    finally:
        timer.cancel()
        for watcher in watchers:
            watcher.cancel()


async def _cancel_on_disconnect(receive: Receive, task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` when the client hangs up."""
    while (await receive())["type"] != "http.disconnect":
        pass
    task.cancel()

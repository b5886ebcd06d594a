"""``until_disconnect``: the hang-up watch of a non-streamed completion, started only once the
answer takes a while (listening for the hang-up costs a task and a receive on the server's
side of every request: a tenth of a quick request's own time, measured at one connection)."""

from __future__ import annotations

import asyncio

import pytest
from litestar.types import HTTPDisconnectEvent

from switchboard.web.disconnect import WATCH_AFTER, ClientDisconnected, until_disconnect


class Caller:
    """A request's ASGI ``receive``, all ``until_disconnect`` reads of it."""

    def __init__(self, hangs_up_after: float | None) -> None:
        self.hangs_up_after = hangs_up_after
        self.receives = 0

    async def receive(self) -> HTTPDisconnectEvent:
        self.receives += 1
        if self.hangs_up_after is None:
            await asyncio.Event().wait()  # stays connected
        else:
            await asyncio.sleep(self.hangs_up_after)
        return {"type": "http.disconnect"}


async def answer(after: float) -> str:
    await asyncio.sleep(after)
    return "answer"


async def test_a_quick_answer_never_listens_for_the_hang_up() -> None:
    caller = Caller(hangs_up_after=None)
    assert await until_disconnect(caller.receive, answer(0)) == "answer"
    await asyncio.sleep(WATCH_AFTER * 2)  # nothing was left behind to listen later either
    assert caller.receives == 0


async def test_a_slow_answer_is_watched_and_returned_when_the_caller_stays() -> None:
    caller = Caller(hangs_up_after=None)
    result = await until_disconnect(caller.receive, answer(WATCH_AFTER * 3))
    assert result == "answer"
    assert caller.receives == 1


async def test_a_caller_who_hangs_up_during_a_slow_answer_cancels_it() -> None:
    caller = Caller(hangs_up_after=0.05)
    work = asyncio.ensure_future(answer(60))
    with pytest.raises(ClientDisconnected):
        await asyncio.wait_for(until_disconnect(caller.receive, work), timeout=30)
    assert work.cancelled()

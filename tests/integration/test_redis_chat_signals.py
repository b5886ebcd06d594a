"""The chat's signals between workers through a real Redis (chat/generations.py): Stop served by
one worker stops the answer another worker writes, and a page that worker serves learns when
the answer has ended. Two workers here are two sets of resources in one process, sharing the
database file and the Redis, as granian's workers share them."""

from __future__ import annotations

import asyncio
import contextlib

from switchboard.accounts.services import create_user
from switchboard.chat import services
from switchboard.chat.generations import Generation
from switchboard.db.redis import redis_client
from switchboard.resources import open_resources
from tests.conftest import SettingsFactory
from tests.support.fake_upstream import FakeUpstream

DEADLINE = 60.0
"""Seconds to wait for something that happens at once when the code is right."""


async def test_stop_and_done_reach_the_other_worker(
    make_settings: SettingsFactory, fake_upstream: FakeUpstream, redis_url: str
) -> None:
    settings = make_settings(redis_url=redis_url)
    cancelled = asyncio.Event()
    started = asyncio.Event()

    async def writes_until_stopped(_: Generation) -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with contextlib.AsyncExitStack() as workers:
        first = await workers.enter_async_context(
            open_resources(settings, fake_upstream.transport(), redis_client(redis_url, 5.0))
        )
        second = await workers.enter_async_context(
            open_resources(settings, fake_upstream.transport(), redis_client(redis_url, 5.0))
        )
        user = await create_user("rex", password="rex-password")  # pragma: allowlist secret
        conversation = await services.start_conversation(int(user.id), "fake-model", "hi")
        reply = await services.add_message(conversation, "assistant", "", status="streaming")
        message_id = int(reply.id)
        generation, began = await first.generations.attach(message_id, writes_until_stopped)
        assert began
        assert generation is not None
        await asyncio.wait_for(started.wait(), DEADLINE)
        assert second.generations.local(message_id) is None  # the other worker's answer

        waiting = asyncio.create_task(second.generations.wait_elsewhere(message_id, 3600))
        await second.generations.stop(message_id)  # Stop, served by the second worker
        await asyncio.wait_for(cancelled.wait(), DEADLINE)  # the first stopped it
        await asyncio.wait_for(waiting, DEADLINE)  # and the second's page learnt it ended
        assert generation.finished

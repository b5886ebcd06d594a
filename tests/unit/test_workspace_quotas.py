"""Per-person quotas of the chat (issue 24): follower streams on answers being written are capped
(200 of them raised another person's median latency from 5 to 88 ms), and conversation imports
are rate-limited; both in this process or in Redis, so they hold across workers (the Redis store
on a real server: tests/integration/test_redis_quotas.py)."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncGenerator, Iterator
from contextlib import ExitStack

import anyio
import httpx
import pytest
from prometheus_client import REGISTRY

from switchboard.accounts.services import create_user
from switchboard.app import create_app
from switchboard.chat import streaming
from switchboard.chat.quotas import ChatQuotas, MemoryQuotas, RedisQuotas
from switchboard.db.redis import redis_client
from tests.conftest import SettingsFactory, WebFactory
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer, free_port
from tests.support.web_session import WebSession
from tests.unit.test_hostile_input import browser_events
from tests.unit.test_input_limits import conversation, export_of, upload

PASSWORD = "a long enough password"  # pragma: allowlist secret
NOTICE = "you already have 2 pages waiting"


@pytest.fixture
def capped(make_settings: SettingsFactory, fake_upstream: FakeUpstream) -> Iterator[LiveServer]:
    settings = make_settings(max_follower_streams=2, imports_per_hour=2)
    server = LiveServer(create_app(settings, upstream_transport=fake_upstream.transport()))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def signed_in(live: LiveServer, web: WebFactory, name: str = "ada") -> WebSession:
    live.run(create_user(name, password=PASSWORD))
    session = web(live.url)
    assert session.sign_in(name, PASSWORD).status_code == 303
    return session


def events_of(response: httpx.Response) -> list[tuple[str, str]]:
    return browser_events("".join(response.iter_text()))


# --- follower streams -------------------------------------------------------------------------


def test_followers_beyond_the_cap_get_a_notice_and_the_rest_the_answer(
    capped: LiveServer, web: WebFactory, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.hold = threading.Event()
    ada = signed_in(capped, web)
    chat = ada.new_conversation()
    sent = ada.post(f"/chat/{chat}/messages", {"content": "wait for it"}, htmx=True)
    found = re.search(r'sse-connect="([^"]+/stream)"', sent.text)
    assert found is not None
    path = found.group(1)
    with ExitStack() as opened:
        writer = opened.enter_context(ada.http.stream("GET", path))  # claims the answer
        followers = [opened.enter_context(ada.http.stream("GET", path)) for _ in range(2)]
        with ada.http.stream("GET", path) as refused:
            assert refused.status_code == 200
            [(name, notice)] = events_of(refused)  # at once, while the answer is held
        assert name == "done"
        assert NOTICE in notice
        assert 'role="alert"' in notice
        assert "sse-connect" not in notice  # the page does not reconnect
        fake_upstream.hold.set()
        for stream in [writer, *followers]:
            [*_, (last, done)] = events_of(stream)
            assert last == "done"
            assert "wait for it" in done
            assert NOTICE not in done
    for _ in range(3):  # every place was given back when its stream ended
        with ada.http.stream("GET", path) as again:
            [(_, done)] = events_of(again)
            assert "wait for it" in done


def test_the_cap_is_per_person(
    capped: LiveServer, web: WebFactory, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.hold = threading.Event()
    ada, bob = signed_in(capped, web, "ada"), signed_in(capped, web, "bob")
    paths = []
    for person in (ada, bob):
        chat = person.new_conversation()
        sent = person.post(f"/chat/{chat}/messages", {"content": "hello"}, htmx=True)
        found = re.search(r'sse-connect="([^"]+/stream)"', sent.text)
        assert found is not None
        paths.append(found.group(1))
    with ExitStack() as opened:
        for person, path in ((ada, paths[0]), (bob, paths[1])):
            opened.enter_context(person.http.stream("GET", path))
        for _ in range(2):
            opened.enter_context(ada.http.stream("GET", paths[0]))
        bobs = opened.enter_context(bob.http.stream("GET", paths[1]))  # ada's cap is not bob's
        fake_upstream.hold.set()
        [*_, (_, done)] = events_of(bobs)
        assert NOTICE not in done


async def hold_and_cancel(quotas: ChatQuotas) -> None:
    """A follower whose page goes away: its stream's task is cancelled (anyio, as Litestar's
    streaming response does) while it waits."""
    waiting = asyncio.Event()

    async def forever() -> AsyncGenerator[bytes, None]:
        waiting.set()
        await asyncio.sleep(3600)
        yield b""

    async def refused() -> str:
        return "refused"

    async def consume() -> None:
        async for _ in streaming.within_quota(quotas, 7, forever(), refused):
            pass

    with anyio.fail_after(30):  # refused (a place lost), it would wait here forever
        async with anyio.create_task_group() as group:
            group.start_soon(consume)
            await waiting.wait()
            group.cancel_scope.cancel()


class SlowToLeave(MemoryQuotas):
    """Leaving takes a round trip, as with Redis (and anyio cancels every await of a cancelled
    task again, unless shielded)."""

    async def leave(self, key: str, ticket: str) -> None:
        await asyncio.sleep(0.01)
        await super().leave(key, ticket)


@pytest.mark.parametrize("store", [MemoryQuotas, SlowToLeave])
async def test_a_follower_whose_page_goes_away_gives_its_place_back(
    store: type[MemoryQuotas],
) -> None:
    """In Redis too: tests/integration/test_redis_quotas.py."""
    quotas = ChatQuotas(store(), followers=1, imports_per_hour=1, lease=600)
    for _ in range(3):  # with a place lost each time, the second would be refused
        await hold_and_cancel(quotas)
    async with quotas.following(7) as admitted:
        assert admitted


# --- imports ----------------------------------------------------------------------------------


def test_imports_beyond_the_hourly_limit_are_refused_with_when(
    capped: LiveServer, web: WebFactory
) -> None:
    ada = signed_in(capped, web)
    body = export_of(conversation("one"))
    assert [upload(ada, body).status_code for _ in range(2)] == [303, 303]
    refused = upload(ada, body)
    assert refused.status_code == 429
    assert "You have started 2 imports within the hour" in refused.text
    assert 0 < int(refused.headers["retry-after"]) <= 3600
    headers = {"x-csrftoken": ada.csrf(), "hx-request": "true"}
    files = {"file": ("c.json", body, "application/json")}
    in_place = ada.http.post("/chat/import", files=files, headers=headers)
    assert in_place.status_code == 200  # htmx swaps it into the import form
    assert "try again in 60 minutes" in in_place.text
    assert "retry-after" in in_place.headers
    bob = signed_in(capped, web, "bob")
    assert upload(bob, body).status_code == 303  # per person


async def test_a_redis_outage_lets_the_chat_through_and_is_counted() -> None:
    redis = redis_client(f"redis://127.0.0.1:{free_port()}/0", 0.2)
    labels = {"feature": "quotas"}
    before = REGISTRY.get_sample_value("switchboard_shared_state_errors_total", labels) or 0.0
    try:
        quotas = ChatQuotas(RedisQuotas(redis), followers=1, imports_per_hour=1, lease=60)
        assert await quotas.import_wait(1) == 0
        async with quotas.following(1) as admitted:
            assert admitted
    finally:
        await redis.aclose()
    after = REGISTRY.get_sample_value("switchboard_shared_state_errors_total", labels)
    assert after is not None
    assert after >= before + 2

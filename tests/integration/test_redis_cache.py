"""The response cache in a real Redis: two gateway replicas share it, and it can have a Redis of
its own apart from the shared state."""

from __future__ import annotations

from typing import Any

import redis
from litestar.testing import AsyncTestClient

from switchboard.app import create_app
from tests.conftest import SettingsFactory, mint_key
from tests.support.fake_upstream import FakeUpstream
from tests.support.redis_server import RedisServer
from tests.unit.test_cache import chat

CHAT = "/v1/chat/completions"


async def test_a_hit_on_one_replica_serves_the_other(
    own_redis: RedisServer, make_settings: SettingsFactory, fake_upstream: FakeUpstream
) -> None:
    settings = make_settings(redis_url=own_redis.url)
    first = create_app(settings, upstream_transport=fake_upstream.transport())
    second = create_app(settings, upstream_transport=fake_upstream.transport())
    body: dict[str, Any] = {
        "model": "fake-model",
        "temperature": 0,
        "messages": [{"role": "user", "content": "shared"}],
    }
    async with AsyncTestClient(app=first) as one, AsyncTestClient(app=second) as two:
        auth = {"Authorization": "Bearer " + await mint_key(one, "replicas")}
        miss = await one.post(CHAT, json=body, headers=auth)
        hit = await two.post(CHAT, json=body, headers=auth)
        streamed_miss = await two.post(CHAT, json={**body, "stream": True}, headers=auth)
        streamed_hit = await one.post(CHAT, json={**body, "stream": True}, headers=auth)
    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("miss", "hit")
    assert hit.content == miss.content
    assert (streamed_miss.headers["x-cache"], streamed_hit.headers["x-cache"]) == ("miss", "hit")
    assert streamed_hit.text == streamed_miss.text
    assert len(fake_upstream.requests) == 2


async def test_the_cache_can_have_its_own_redis_apart_from_the_shared_state(
    make_settings: SettingsFactory, fake_upstream: FakeUpstream, redis_url: str
) -> None:
    """Answers are evicted under memory pressure; limits, budgets and sessions must not be: in
    production the cache gets its own Redis (allkeys-lru), the state one that never evicts."""
    state_url, cache_url = redis_url, redis_url.rsplit("/", 1)[0] + "/1"
    settings = make_settings(redis_url=state_url, cache_redis_url=cache_url)
    app = create_app(settings, upstream_transport=fake_upstream.transport())
    async with AsyncTestClient(app=app) as client:
        client.headers["Authorization"] = f"Bearer {await mint_key(client, 'alice')}"
        first = await client.post(CHAT, json=chat())
        second = await client.post(CHAT, json=chat())
        assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    with redis.Redis.from_url(state_url) as state, redis.Redis.from_url(cache_url) as cache:
        state_keys = [key.decode() for key in state.keys("*")]
        cache_keys = [key.decode() for key in cache.keys("*")]
    assert len(cache_keys) == 1  # the answer
    assert not any(key in state_keys for key in cache_keys)
    assert state_keys  # the rate-limit buckets

"""Two gateway replicas share the response cache through a real Redis."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from switchboard.app import create_app
from tests.conftest import SettingsFactory, mint_key
from tests.support.fake_upstream import FakeUpstream
from tests.support.redis_server import RedisServer

CHAT = "/v1/chat/completions"


async def test_a_hit_on_one_replica_serves_the_other(
    own_redis: RedisServer, make_settings: SettingsFactory, fake_upstream: FakeUpstream
) -> None:
    settings = make_settings(redis_url=own_redis.url)
    first = create_app(settings, upstream_transport=fake_upstream.transport())
    second = create_app(settings, upstream_transport=fake_upstream.transport())
    body: dict[str, Any] = {"model": "fake-model", "temperature": 0,
                            "messages": [{"role": "user", "content": "shared"}]}  # fmt: skip
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

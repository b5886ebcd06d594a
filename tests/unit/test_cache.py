"""Response cache: what is cacheable, the key, LRU/TTL/byte bounds, hits over HTTP."""

import asyncio
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from switchboard.gateway.answers import Usage
from switchboard.gateway.cache import CachedAnswer, MemoryCache, cache_key, is_cacheable
from switchboard.usage.tables import UsageRecord
from tests.support.fake_upstream import FakeUpstream

CHAT = "/v1/chat/completions"


def chat(content: str = "cache me", **extra: Any) -> dict[str, Any]:
    return {
        "model": "fake-model",
        "messages": [{"role": "user", "content": content}],
        "temperature": 0,
        **extra,
    }


def answer(size: int = 10) -> CachedAnswer:
    return CachedAnswer(kind="json", usage=Usage(1, 2, 3), body=b"x" * size)


def test_only_deterministic_requests_are_cacheable() -> None:
    assert is_cacheable({"temperature": 0})
    assert is_cacheable({"temperature": 0.7, "seed": 3})
    assert not is_cacheable({"temperature": 0.7})
    assert not is_cacheable({})


def test_the_key_is_canonical_and_ignores_what_does_not_change_the_answer() -> None:
    a = cache_key("/chat/completions", {"model": "m", "temperature": 0, "user": "u1"}, "global")
    b = cache_key("/chat/completions", {"user": "u2", "temperature": 0, "model": "m"}, "global")
    assert a == b
    assert a != cache_key("/completions", {"model": "m", "temperature": 0}, "global")
    assert a != cache_key(
        "/chat/completions", {"model": "m", "temperature": 0, "seed": 1}, "global"
    )


async def test_memory_cache_evicts_least_recently_used_beyond_its_entries() -> None:
    cache = MemoryCache(max_entries=2, max_bytes=1000, ttl=60)
    await cache.put("a", answer())
    await cache.put("b", answer())
    assert await cache.get("a") is not None  # a is now the most recent
    await cache.put("c", answer())
    assert await cache.get("b") is None
    assert await cache.get("a") is not None
    assert len(cache) == 2


async def test_memory_cache_is_bounded_in_bytes_and_skips_oversized_answers() -> None:
    cache = MemoryCache(max_entries=100, max_bytes=25, ttl=60)
    await cache.put("big", answer(size=26))
    assert await cache.get("big") is None
    for name in "abc":
        await cache.put(name, answer(size=10))
    assert cache.bytes <= 25
    assert await cache.get("a") is None
    assert await cache.get("c") is not None


async def test_memory_cache_entries_expire() -> None:
    cache = MemoryCache(max_entries=10, max_bytes=1000, ttl=0.05)
    await cache.put("a", answer())
    await asyncio.sleep(0.08)
    assert await cache.get("a") is None
    assert cache.bytes == 0


async def test_a_repeated_deterministic_request_is_a_hit(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    first = await client.post(CHAT, json=chat())
    second = await client.post(CHAT, json=chat())
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert second.content == first.content
    assert len(fake_upstream.requests) == 1
    # a hit still counts against the limits and is accounted like a miss
    assert (
        int(second.headers["x-ratelimit-remaining-requests"])
        == int(first.headers["x-ratelimit-remaining-requests"]) - 1
    )
    await client.app.state.resources.usage.flush()
    rows = await UsageRecord.select(UsageRecord.cache_hit, UsageRecord.total_tokens)
    assert [(r["cache_hit"], r["total_tokens"]) for r in rows] == [(False, 9), (True, 9)]


async def test_a_streamed_hit_is_replayed_as_sse(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    first = await client.post(CHAT, json=chat(stream=True))
    second = await client.post(CHAT, json=chat(stream=True))
    assert second.headers["x-cache"] == "hit"
    assert second.headers["content-type"].startswith("text/event-stream")
    assert second.text == first.text
    assert second.text.endswith("data: [DONE]\n\n")
    assert len(fake_upstream.requests) == 1
    # asking for usage changes the answer's shape: its own entry, replayed with the usage chunk
    usage_body = chat(stream=True, stream_options={"include_usage": True})
    assert (await client.post(CHAT, json=usage_body)).headers["x-cache"] == "miss"
    with_usage = await client.post(CHAT, json=usage_body)
    assert with_usage.headers["x-cache"] == "hit"
    assert '"usage":{"prompt_tokens":7' in with_usage.text.replace(" ", "")
    assert len(fake_upstream.requests) == 2


@pytest.mark.parametrize(("directive", "stored"), [("no-cache", True), ("no-store", False)])
async def test_cache_control_refuses_the_cache(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream, directive: str, stored: bool
) -> None:
    await client.post(CHAT, json=chat("x"))
    refused = await client.post(CHAT, json=chat("x"), headers={"Cache-Control": directive})
    assert refused.headers["x-cache"] == "miss"
    assert len(fake_upstream.requests) == 2
    fresh = await client.post(CHAT, json=chat("y"), headers={"Cache-Control": directive})
    again = await client.post(CHAT, json=chat("y"))
    assert fresh.headers["x-cache"] == "miss"
    assert again.headers["x-cache"] == ("hit" if stored else "miss")


async def test_sampled_requests_bypass_the_cache(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    for _ in range(2):
        response = await client.post(CHAT, json={**chat(), "temperature": 0.8})
        assert response.headers["x-cache"] == "bypass"
    assert len(fake_upstream.requests) == 2


async def test_errors_are_not_cached(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    fake_upstream.fail_with = (400, {"error": {"message": "nope", "type": "BadRequestError"}})
    assert (await client.post(CHAT, json=chat())).status_code == 400
    fake_upstream.fail_with = None
    assert (await client.post(CHAT, json=chat())).headers["x-cache"] == "miss"

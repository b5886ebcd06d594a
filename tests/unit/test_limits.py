"""Per-key rate limits: exact under concurrency, OpenAI's headers, token reconciliation."""

import asyncio
import threading
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from switchboard.gateway.buckets import MemoryBuckets, Want
from switchboard.gateway.errors import GatewayError
from switchboard.gateway.limits import LimitScope, RateLimiter, _duration
from tests.conftest import mint_key, mint_key_in
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer
from tests.support.waiting import wait_for_async

CHAT = "/v1/chat/completions"
DEADLINE = 60.0
"""Seconds the refusals of a burst may take on a busy machine."""


def body(max_tokens: int = 5) -> dict[str, Any]:
    return {
        "model": "fake-model",
        "messages": [{"role": "user", "content": "one two"}],
        "max_tokens": max_tokens,
    }


async def test_exactly_n_of_5n_concurrent_reservations_pass() -> None:
    limiter = RateLimiter(MemoryBuckets())

    async def attempt() -> int:
        try:
            await limiter.reserve([LimitScope("key", 1, 7, 1_000_000)], 10)
        except GatewayError as error:
            return error.status
        return 200

    results = await asyncio.gather(*(attempt() for _ in range(35)))
    assert sorted(results) == [200] * 7 + [429] * 28


async def held_burst(
    http: httpx.AsyncClient,
    upstream: FakeUpstream,
    requests: list[dict[str, Any]],
    auth: dict[str, str],
    refused: int,
) -> list[httpx.Response]:
    """Send ``requests`` at once while the upstream holds every completion, so those let
    through stay in flight (their reservations held) until ``refused`` others have been answered
    or DEADLINE passed; then let them finish."""
    upstream.hold = threading.Event()
    sent = [asyncio.create_task(http.post(CHAT, json=r, headers=auth)) for r in requests]

    async def refused_answered() -> bool:
        return sum(task.done() for task in sent) >= refused

    try:
        await wait_for_async(refused_answered, f"{refused} answered while held", DEADLINE, 0.02)
    finally:
        upstream.hold.set()
    return list(await asyncio.gather(*sent))


async def test_exactly_n_of_5n_concurrent_http_requests_pass(
    live_fake: LiveServer, fake_upstream: FakeUpstream
) -> None:
    secret = live_fake.run(mint_key_in(live_fake.app, "limited", rpm=4, tpm=1_000_000))
    auth = {"Authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient(base_url=live_fake.url, timeout=2 * DEADLINE) as http:
        responses = await held_burst(http, fake_upstream, [body()] * 20, auth, refused=16)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 4 + [429] * 16
    limited = next(r for r in responses if r.status_code == 429)
    error = limited.json()["error"]
    assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["x-ratelimit-limit-requests"] == "4"
    assert limited.headers["x-ratelimit-remaining-requests"] == "0"


async def test_every_response_carries_the_ratelimit_headers(client: AsyncTestClient[Any]) -> None:
    secret = await mint_key(client, "headers", rpm=10, tpm=5000)
    auth = {"Authorization": f"Bearer {secret}"}
    first = await client.post(CHAT, json=body(), headers=auth)
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-requests"] == "10"
    assert first.headers["x-ratelimit-remaining-requests"] == "9"
    assert first.headers["x-ratelimit-limit-tokens"] == "5000"
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    # the fake upstream reports 7 prompt + 2 completion tokens: the reservation (about 100
    # tokens: a prompt estimate plus max_tokens) was settled to those 9 before the answer left
    assert 5000 - 9 <= int(first.headers["x-ratelimit-remaining-tokens"]) <= 5000
    streamed = await client.post(CHAT, json={**body(), "stream": True}, headers=auth)
    assert streamed.status_code == 200
    assert streamed.headers["x-ratelimit-remaining-requests"] == "8"


async def test_a_token_budget_over_the_limit_is_429_tokens(
    live_fake: LiveServer, fake_upstream: FakeUpstream
) -> None:
    secret = live_fake.run(mint_key_in(live_fake.app, "tokens", rpm=100, tpm=100))
    auth = {"Authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient(base_url=live_fake.url, timeout=2 * DEADLINE) as http:
        # each request reserves 10 (prompt estimate) + 40 (max_tokens) = 50 tokens
        first = await http.post(CHAT, json=body(max_tokens=40), headers=auth)
        assert first.status_code == 200
        second = await http.post(CHAT, json=body(max_tokens=40), headers=auth)
        assert second.status_code == 200  # the first settled at its 9 real tokens, not 50
        # the burst's reservations are held in flight together
        burst = await held_burst(http, fake_upstream, [body(max_tokens=40)] * 3, auth, refused=2)
    assert sorted(r.status_code for r in burst) == [200, 429, 429]
    limited = next(r for r in burst if r.status_code == 429)
    assert limited.json()["error"]["type"] == "tokens"
    assert limited.headers["x-ratelimit-limit-tokens"] == "100"


async def test_bucket_refunds_and_reports() -> None:
    # The buckets leak with their clock: stopped here, so the figures are exact however long
    # the steps take; then moved on by hand.
    now = [1000.0]
    buckets = MemoryBuckets(clock=lambda: now[0])
    want = [Want("b", 100, 80)]
    assert (await buckets.take(want)).refused is None
    refused = await buckets.take([Want("b", 100, 30)])
    assert (refused.refused, refused.levels) == (0, (80.0,))
    buckets.adjust_soon("b", 100, -50)
    assert (await buckets.take([Want("b", 100, 30)])).levels == (60.0,)
    now[0] += 6.0  # 100 a minute: 10 leaked
    assert buckets.level("b", 100) == pytest.approx(50.0)
    buckets.adjust_soon("b", 100, -1000)
    assert buckets.level("b", 100) == 0


async def test_a_take_is_all_or_nothing_over_its_buckets() -> None:
    buckets = MemoryBuckets(clock=lambda: 0.0)
    await buckets.take([Want("user", 10, 9)])
    refused = await buckets.take([Want("key", 10, 5), Want("user", 10, 5)])
    assert refused.refused == 1
    assert buckets.level("key", 10) == 0  # nothing was taken from the key either


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.25, "250ms"), (1, "1s"), (59.2, "1m0s"), (360, "6m0s"), (75, "1m15s")]
)
def test_reset_durations_use_openais_format(seconds: float, text: str) -> None:
    assert _duration(seconds) == text

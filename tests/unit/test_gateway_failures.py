"""The gateway when things go wrong or get tricky: the cache key and scope, accounting of
abandoned and failed requests, a failing cache backend, unexpected errors, the request-field
allow-list and the token cap. Each test reproduces a bug of an earlier version."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from switchboard.usage.tables import UsageRecord
from tests.conftest import mint_key, mint_key_in
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer, free_port
from tests.support.waiting import wait_for

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
DEADLINE = 60.0


def chat(content: str = "cache me", **extra: Any) -> dict[str, Any]:
    return {"model": "fake-model", "messages": [{"role": "user", "content": content}], **extra}


async def usage_rows(app: Any) -> list[dict[str, Any]]:
    await app.state.resources.usage.flush()
    rows: list[dict[str, Any]] = await UsageRecord.select(
        UsageRecord.status, UsageRecord.completion_tokens, UsageRecord.cache_hit
    ).order_by(UsageRecord.id)
    return rows


# --- the cache key and its scope ----------------------------------------------------------------
async def test_n_is_part_of_the_cache_key(client: AsyncTestClient[Any]) -> None:
    for n in (2, 1, 3):
        response = await client.post(CHAT, json=chat(temperature=0, n=n))
        assert response.status_code == 200, response.text
        assert response.headers["x-cache"] == "miss"
        assert len(response.json()["choices"]) == n
    again = await client.post(CHAT, json=chat(temperature=0, n=2))
    assert (again.headers["x-cache"], len(again.json()["choices"])) == ("hit", 2)


async def test_the_cache_is_per_user_by_default(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    assert (await client.post(CHAT, json=chat(temperature=0))).headers["x-cache"] == "miss"
    assert (await client.post(CHAT, json=chat(temperature=0))).headers["x-cache"] == "hit"
    bob = {"Authorization": f"Bearer {await mint_key(client, 'bob')}"}
    response = await client.post(CHAT, json=chat(temperature=0), headers=bob)
    assert response.headers["x-cache"] == "miss"  # bob learns nothing of what alice asked
    assert len(fake_upstream.requests) == 2


class TestGlobalScope:
    @pytest.fixture
    def app_overrides(self) -> dict[str, Any]:
        return {"cache_scope": "global"}

    async def test_a_global_cache_is_shared(self, client: AsyncTestClient[Any]) -> None:
        assert (await client.post(CHAT, json=chat(temperature=0))).headers["x-cache"] == "miss"
        bob = {"Authorization": f"Bearer {await mint_key(client, 'bob')}"}
        response = await client.post(CHAT, json=chat(temperature=0), headers=bob)
        assert response.headers["x-cache"] == "hit"


async def test_an_answer_with_an_in_band_error_is_never_cached(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    fake_upstream.fail_after = 1
    body = chat("one two three", temperature=0, stream=True)
    first = await client.post(CHAT, json=body)
    events = [e[6:] for e in first.text.split("\n\n") if e.startswith("data: ")]
    assert events[-1] == "[DONE]"
    error = msgspec.json.decode(events[-2])["error"]
    assert (error["type"], error["code"]) == ("server_error", "upstream_error")
    second = await client.post(CHAT, json=body)
    assert second.headers["x-cache"] == "miss"
    assert len(fake_upstream.requests) == 2
    assert [row["status"] for row in await usage_rows(client.app)] == [502, 502]


async def test_a_stream_is_cached_once_done_passed_even_if_the_caller_leaves_then(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    from switchboard.accounts.services import get_user_by_name
    from switchboard.gateway.accounting import Caller
    from switchboard.gateway.chunks import DONE
    from switchboard.gateway.parsing import parse_request

    alice = await get_user_by_name("alice")  # the client fixture's key belongs to alice
    assert alice is not None
    body = chat("a b", temperature=0, stream=True)
    gateway = client.app.state.resources.gateway
    completion = await gateway.complete(
        parse_request("chat", msgspec.json.encode(body)),
        Caller(user_id=int(alice.id), key_id=None, rpm=100, tpm=10**6),
    )
    assert completion.events is not None
    async for batch in completion.events:
        if DONE in batch:
            break  # the caller hangs up as soon as it has [DONE]
    await completion.events.aclose()
    replay = await client.post(CHAT, json=body)
    assert replay.headers["x-cache"] == "hit"
    assert len(fake_upstream.requests) == 1


def post_into(http: httpx.Client, path: str, body: dict[str, Any], statuses: list[int]) -> None:
    statuses.append(http.post(path, json=body).status_code)


# --- accounting -------------------------------------------------------------------------------
@pytest.fixture
def slow_live(make_settings: Any, fake_upstream: FakeUpstream) -> Iterator[LiveServer]:
    from switchboard.app import create_app

    fake_upstream.chunk_delay = 0.05
    server = LiveServer(create_app(make_settings(), upstream_transport=fake_upstream.transport()))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_an_abandoned_stream_records_the_tokens_it_generated(
    slow_live: LiveServer, fake_upstream: FakeUpstream
) -> None:
    secret = slow_live.run(mint_key_in(slow_live.app, "leaver", rpm=100, tpm=10**6))
    words = " ".join(f"w{i}" for i in range(60))
    with (
        httpx.Client(base_url=slow_live.url, timeout=DEADLINE) as http,
        http.stream(
            "POST",
            CHAT,
            json=chat(words, stream=True),
            headers={"Authorization": f"Bearer {secret}"},
        ) as response,
    ):
        assert response.status_code == 200
        words_seen = 0
        for line in response.iter_lines():
            words_seen += '"content":"w' in line.replace(" ", "")
            if words_seen == 3:
                break  # three words in, the caller hangs up
    wait_for(lambda: fake_upstream.stream_endings == ["closed"], "the upstream stream closed")
    rows = slow_live.run(usage_rows(slow_live.app))
    assert len(rows) == 1
    assert rows[0]["status"] == 499
    assert 3 <= rows[0]["completion_tokens"] < 60  # what was generated, not 0, not everything


async def test_an_unexpected_error_is_a_500_with_the_request_id_and_still_accounted(
    client: AsyncTestClient[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = await mint_key(client, "carol", rpm=100, tpm=10_000)
    auth = {"Authorization": f"Bearer {secret}", "x-request-id": "req-boom-1"}
    pool = client.app.state.resources.pool
    working = pool.servers_for

    def broken(model: str) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(pool, "servers_for", broken)
    response = await client.post(CHAT, json=chat(max_tokens=2000), headers=auth)
    assert response.status_code == 500
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("server_error", "internal_error")
    assert "req-boom-1" in error["message"]
    assert "a bug" not in response.text  # no internals leak
    monkeypatch.setattr(pool, "servers_for", working)
    after = await client.post(CHAT, json=chat("x"), headers=auth)
    assert after.status_code == 200
    # the 2,000-token reservation of the failed request was given back
    assert int(after.headers["x-ratelimit-remaining-tokens"]) >= 10_000 - 20
    assert [row["status"] for row in await usage_rows(client.app)] == [500, 200]


def test_every_prompt_and_every_choice_is_reserved(
    live_fake: LiveServer, fake_upstream: FakeUpstream
) -> None:
    secret = live_fake.run(mint_key_in(live_fake.app, "batcher", rpm=100, tpm=1000))
    auth = {"Authorization": f"Bearer {secret}"}
    fake_upstream.hold = threading.Event()
    cases = [
        (COMPLETIONS, {"model": "fake-model", "prompt": ["a", "b", "c", "d"], "max_tokens": 200}),
        (CHAT, chat(temperature=0, n=4, max_tokens=200)),  # n answered by repeating one choice
    ]
    for path, big in cases:
        fake_upstream.hold.clear()
        fake_upstream.requests.clear()
        statuses: list[int] = []
        with httpx.Client(base_url=live_fake.url, timeout=DEADLINE, headers=auth) as http:
            worker = threading.Thread(target=post_into, args=(http, path, big, statuses))
            worker.start()
            wait_for(lambda: len(fake_upstream.requests) == 1, "the big request is in flight")
            small = http.post(CHAT, json=chat("x", max_tokens=300))
            fake_upstream.hold.set()
            worker.join(DEADLINE)
        assert statuses == [200]
        assert small.status_code == 429, path  # 4 x 200 tokens are held by the first
        assert small.json()["error"]["type"] == "tokens"


# --- the cache backend failing ------------------------------------------------------------------
class TestRedisRefusing:
    @pytest.fixture
    def app_overrides(self) -> dict[str, Any]:
        return {"redis_url": f"redis://127.0.0.1:{free_port()}/0"}  # nothing listens there

    async def test_a_cache_that_is_down_is_a_miss(self, client: AsyncTestClient[Any]) -> None:
        before = REGISTRY.get_sample_value("switchboard_cache_errors_total", {"operation": "get"})
        response = await client.post(CHAT, json=chat(temperature=0))
        assert response.status_code == 200, response.text
        assert response.headers["x-cache"] == "miss"
        after = REGISTRY.get_sample_value("switchboard_cache_errors_total", {"operation": "get"})
        assert before is not None
        assert after == before + 1
        assert [row["status"] for row in await usage_rows(client.app)] == [200]


class SilentServer:
    """Accepts TCP connections and never answers (a hung Redis), in a thread of its own."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):  # the listener closed
            while True:
                self.accepted.append(self.listener.accept()[0])

    def close(self) -> None:
        with contextlib.suppress(OSError):  # wakes the accept() (close alone does not, on Linux)
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(DEADLINE)
        for connection in self.accepted:
            connection.close()


async def test_a_hung_redis_is_a_miss_not_a_hung_request(
    make_settings: Any, fake_upstream: FakeUpstream
) -> None:
    from switchboard.app import create_app

    silent = SilentServer()
    settings = make_settings(redis_url=f"redis://127.0.0.1:{silent.port}/0")
    try:
        app = create_app(settings, upstream_transport=fake_upstream.transport())
        async with AsyncTestClient(app=app) as client:
            secret = await mint_key(client, "alice")
            response = await asyncio.wait_for(
                client.post(
                    CHAT, json=chat(temperature=0), headers={"Authorization": f"Bearer {secret}"}
                ),
                DEADLINE,
            )
            assert response.status_code == 200, response.text
            assert response.headers["x-cache"] == "miss"
    finally:
        silent.close()


# --- what is relayed to the model server --------------------------------------------------------
@pytest.mark.parametrize(
    "field",
    [
        "kv_transfer_params",
        "vllm_xargs",
        "priority",
        "request_id",
        "prompt_logprobs",
        "best_of",
        "chat_template",
        "logits_processors",
        "no_such_field",
    ],
)
async def test_fields_outside_the_allow_list_are_refused_by_name(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream, field: str
) -> None:
    response = await client.post(CHAT, json={**chat(), field: 1})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (field, "unknown_parameter")
    assert field in error["message"]
    assert fake_upstream.requests == []


async def test_max_tokens_is_capped_at_the_context_length_by_default(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    response = await client.post(CHAT, json=chat(max_tokens=100_000))
    assert response.status_code == 200
    assert fake_upstream.requests[-1]["max_tokens"] == 2048  # the fake model's max_model_len
    assert (await client.post(CHAT, json=chat())).status_code == 200
    assert "max_tokens" not in fake_upstream.requests[-1]  # vLLM fits it to the prompt


class TestOperatorCap:
    @pytest.fixture
    def app_overrides(self) -> dict[str, Any]:
        return {"max_tokens_cap": 64}

    async def test_the_cap_bounds_every_request(
        self, client: AsyncTestClient[Any], fake_upstream: FakeUpstream
    ) -> None:
        await client.post(CHAT, json=chat())
        await client.post(CHAT, json=chat(max_tokens=100))
        await client.post(CHAT, json=chat(max_completion_tokens=10))
        sent = [
            (r.get("max_tokens"), r.get("max_completion_tokens")) for r in fake_upstream.requests
        ]
        assert sent == [(64, None), (64, None), (None, 10)]

    async def test_min_tokens_stays_within_the_cap(
        self, client: AsyncTestClient[Any], fake_upstream: FakeUpstream
    ) -> None:
        response = await client.post(CHAT, json=chat(max_tokens=500, min_tokens=100))
        assert response.status_code == 200
        sent = fake_upstream.requests[-1]
        assert (sent["max_tokens"], sent["min_tokens"]) == (64, 64)


def http_requests(status: str) -> float:
    labels = {"method": "POST", "route": "/v1/chat/completions", "status": status}
    return REGISTRY.get_sample_value("switchboard_http_requests_total", labels) or 0.0


def test_a_caller_who_leaves_before_the_answer_is_a_499_not_a_server_error(
    slow_live: LiveServer, fake_upstream: FakeUpstream
) -> None:
    """Metrics and the access log say 499 (the caller closed the request); a 500 there would
    raise GatewayHighErrorRatio for what is nobody's fault."""
    secret = slow_live.run(mint_key_in(slow_live.app, "quitter", rpm=100, tpm=10**6))
    before = {status: http_requests(status) for status in ("499", "500")}
    fake_upstream.hold = threading.Event()  # the model never answers in time
    try:
        auth = {"Authorization": f"Bearer {secret}"}
        with (
            httpx.Client(base_url=slow_live.url, timeout=0.5) as http,
            pytest.raises(httpx.ReadTimeout),  # the caller gives up and hangs up
        ):
            http.post(CHAT, json=chat("x"), headers=auth)
        wait_for(lambda: http_requests("499") == before["499"] + 1, "the request counted, 499")
    finally:
        fake_upstream.hold.set()
    assert http_requests("500") == before["500"]
    assert [row["status"] for row in slow_live.run(usage_rows(slow_live.app))] == [499]

"""/metrics: protected, and the counters move with real traffic; JSON log lines."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from switchboard.observability.logging import JsonFormatter

CHAT = "/v1/chat/completions"


def sample(text: str, name: str, absent: float | None = None, **labels: str) -> float:
    """The value of one sample; ``absent`` if there is none (an error unless it is given)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    assert absent is not None, f"no sample {name} {labels} in the exposition"
    return absent


async def test_metrics_follow_the_traffic(client: AsyncTestClient[Any]) -> None:
    before = (await client.get("/metrics")).text
    body = {
        "model": "fake-model",
        "messages": [{"role": "user", "content": "a b c"}],
        "temperature": 0,
    }
    for _ in range(2):
        assert (await client.post(CHAT, json=body)).status_code == 200
    assert (await client.post(CHAT, json={**body, "stream": True})).status_code == 200
    assert (await client.get("/nowhere")).status_code == 404
    response = await client.get("/metrics")
    assert response.status_code == 200
    after = response.text

    def delta(name: str, **labels: str) -> float:
        # before the traffic a labelled series may not exist yet (0); after it, it must
        return sample(after, name, absent=None, **labels) - sample(before, name, absent=0, **labels)

    route = "/v1/chat/completions"
    assert delta("switchboard_http_requests_total", route=route, status="200") == 3
    assert delta("switchboard_http_requests_total", route="unmatched", status="404") == 1
    assert delta("switchboard_http_request_duration_seconds_count", route=route) == 3
    assert delta("switchboard_cache_requests_total", result="miss") == 2  # JSON, then stream
    assert delta("switchboard_cache_requests_total", result="hit") == 1
    assert delta("switchboard_tokens_total", model="fake-model", kind="completion") == 9
    assert delta("switchboard_time_to_first_token_seconds_count", model="fake-model") == 1
    assert sample(after, "switchboard_active_streams") == 0
    assert sample(after, "switchboard_build_info", version="0.1.0") == 1


async def test_rate_limited_requests_are_counted(client: AsyncTestClient[Any]) -> None:
    from tests.conftest import mint_key

    secret = await mint_key(client, "tiny", rpm=1)
    auth = {"Authorization": f"Bearer {secret}"}
    before = sample(
        (await client.get("/metrics")).text,
        "switchboard_rate_limited_total",
        absent=0,
        limit="requests",
    )
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "x"}]}
    statuses = [(await client.post(CHAT, json=body, headers=auth)).status_code for _ in range(3)]
    assert statuses == [200, 429, 429]
    after = sample(
        (await client.get("/metrics")).text, "switchboard_rate_limited_total", limit="requests"
    )
    assert after - before == 2


class TestWithAToken:
    @pytest.fixture
    def app_overrides(self) -> dict[str, Any]:
        return {"metrics_token": "scrape-secret-123"}

    async def test_metrics_need_the_token(self, client: AsyncTestClient[Any]) -> None:
        assert (await client.get("/metrics")).status_code == 401
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        auth = {"Authorization": "Bearer scrape-secret-123"}
        right = await client.get("/metrics", headers=auth)
        assert right.status_code == 200
        assert "switchboard_http_requests_total" in right.text


def test_log_lines_are_json_with_the_extra_fields() -> None:
    record = logging.LogRecord(
        "switchboard.access", logging.INFO, "x.py", 1, "%s %s", ("POST", "/v1"), None
    )
    record.request_id = "abc123"
    record.status = 200
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "POST /v1"
    assert (line["level"], line["logger"], line["request_id"], line["status"]) == (
        "info",
        "switchboard.access",
        "abc123",
        200,
    )
    assert line["time"].endswith("Z")


def test_behind_a_trusted_proxy_loopback_means_the_real_client(
    make_settings: Any, fake_upstream: Any
) -> None:
    """The proxy connects from loopback; without trusting it, every remote client would pass
    the loopback check. Trusted, the forwarded address decides (and the access log shows it)."""
    import httpx

    from switchboard.app import create_app
    from tests.support.live import LiveServer

    settings = make_settings(trusted_proxies="127.0.0.1")
    server = LiveServer(create_app(settings, upstream_transport=fake_upstream.transport())).start()
    try:
        remote = httpx.get(f"{server.url}/metrics", headers={"x-forwarded-for": "203.0.113.5"})
        assert remote.status_code == 401
        local = httpx.get(f"{server.url}/metrics", headers={"x-forwarded-for": "127.0.0.1"})
        assert local.status_code == 200
    finally:
        server.stop()

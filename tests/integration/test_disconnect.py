"""A client that goes away stops the generation: vLLM's running requests drop back to 0."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from switchboard.devstack.model_server import ModelServer
from tests.conftest import mint_key_in
from tests.integration.conftest import MODEL, AppFactory
from tests.support.live import LiveServer

LONG = {"max_tokens": 1800, "ignore_eos": True, "temperature": 0.7}


def running(model_server: ModelServer) -> float:
    metrics = httpx.get(f"{model_server.url}/metrics", timeout=5).text
    values = re.findall(r"^vllm:num_requests_running\{[^}]*\} ([0-9.e+]+)$", metrics, re.MULTILINE)
    assert values, "vLLM exposes vllm:num_requests_running"
    return sum(float(v) for v in values)


def wait_until(condition: object, timeout: float) -> float:
    """Seconds until ``condition()`` held (``timeout`` + 1 if it never did)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():  # type: ignore[operator]
            return time.monotonic() - started
        time.sleep(0.02)
    return timeout + 1


AppAndAuth = tuple[LiveServer, dict[str, str]]


@pytest.fixture
def app_and_auth(live_app: AppFactory, model_server: ModelServer) -> AppAndAuth:
    assert wait_until(lambda: running(model_server) == 0, 30) <= 30
    app = live_app()
    secret = app.run(mint_key_in(app.app, "leaver", rpm=1000, tpm=10_000_000))
    return app, {"Authorization": f"Bearer {secret}"}


def chat(content: str, stream: bool) -> dict[str, object]:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": content}],
        "stream": stream,
        **LONG,
    }


def test_closing_a_stream_mid_way_stops_generation(
    app_and_auth: AppAndAuth, model_server: ModelServer
) -> None:
    app, auth = app_and_auth
    url = f"{app.url}/v1/chat/completions"
    with httpx.stream(
        "POST", url, json=chat("Tell a long story.", True), headers=auth, timeout=60
    ) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        received = [line for _, line in zip(range(10), lines, strict=False)]
        assert any(line.startswith("data: {") for line in received)
        assert running(model_server) >= 1  # generating right now
    assert wait_until(lambda: running(model_server) == 0, 5) <= 1.0


def test_closing_before_the_first_token_stops_generation(
    app_and_auth: AppAndAuth, model_server: ModelServer
) -> None:
    app, auth = app_and_auth
    url = f"{app.url}/v1/chat/completions"
    prompt = "Summarise this text. " + "The quick brown fox jumps over the lazy dog. " * 150
    with httpx.stream("POST", url, json=chat(prompt, True), headers=auth, timeout=60) as response:
        assert response.status_code == 200  # headers are sent once the upstream accepted it
        assert wait_until(lambda: running(model_server) >= 1, 5) <= 5
    assert wait_until(lambda: running(model_server) == 0, 5) <= 1.0


def test_giving_up_on_a_non_streaming_answer_stops_generation(
    app_and_auth: AppAndAuth, model_server: ModelServer
) -> None:
    app, auth = app_and_auth
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{app.url}/v1/chat/completions", json=chat("Write an essay.", False),
                   headers=auth, timeout=httpx.Timeout(10, read=1.5))  # fmt: skip
    assert wait_until(lambda: running(model_server) == 0, 5) <= 1.0
    rows = app.run(_statuses(app))
    assert rows == [499]


async def _statuses(app: LiveServer) -> list[int]:
    from switchboard.usage.tables import UsageRecord

    await app.app.state.resources.usage.flush()
    return [r["status"] for r in await UsageRecord.select(UsageRecord.status)]

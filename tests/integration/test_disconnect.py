"""A client that goes away stops the generation: vLLM aborts the request (its running requests
drop back to 0 and no request runs on to its ``max_tokens``)."""

from __future__ import annotations

import json
import re
import socket
from urllib.parse import urlsplit

import httpx
import pytest

from switchboard.devstack.model_server import ModelServer
from tests.conftest import mint_key_in
from tests.integration.conftest import MODEL, AppFactory
from tests.support.live import LiveServer
from tests.support.waiting import wait_for

MAX_TOKENS = 1800
LONG = {"max_tokens": MAX_TOKENS, "ignore_eos": True, "temperature": 0.7}
DEADLINE = 60.0
"""Seconds a condition may take on a busy machine: the tests assert that it happens, not how
fast (an aborted request stops at once; one left running takes minutes to reach MAX_TOKENS)."""


def metric(model_server: ModelServer, name: str, **labels: str) -> float:
    """The sum of vLLM's samples of ``name`` with these labels (it must expose at least one)."""
    text = httpx.get(f"{model_server.url}/metrics", timeout=30).text
    total, seen = 0.0, False
    for line in text.splitlines():
        found = re.match(rf"^{re.escape(name)}\{{([^}}]*)\}} ([0-9.e+-]+)$", line)
        if found and all(f'{k}="{v}"' in found.group(1) for k, v in labels.items()):
            total, seen = total + float(found.group(2)), True
    assert seen, f"vLLM exposes {name} {labels}"
    return total


def running(model_server: ModelServer) -> float:
    return metric(model_server, "vllm:num_requests_running")


class Generated:
    """What vLLM did from now on: requests run to their length limit, tokens generated."""

    def __init__(self, model_server: ModelServer) -> None:
        self.model_server = model_server
        self.lengths = self.finished_by_length()
        self.tokens = self.generated_tokens()

    def finished_by_length(self) -> float:
        return metric(self.model_server, "vllm:request_success_total", finished_reason="length")

    def generated_tokens(self) -> float:
        return metric(self.model_server, "vllm:generation_tokens_total")

    def assert_aborted(self) -> None:
        """Nothing is running, and no request ran on to MAX_TOKENS since this was made."""
        wait_for(lambda: running(self.model_server) == 0, "vLLM runs no request", DEADLINE)
        assert self.finished_by_length() == self.lengths
        assert self.generated_tokens() - self.tokens < MAX_TOKENS


AppAndAuth = tuple[LiveServer, dict[str, str]]


@pytest.fixture
def app_and_auth(live_app: AppFactory, model_server: ModelServer) -> AppAndAuth:
    wait_for(lambda: running(model_server) == 0, "vLLM runs no request", DEADLINE)
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
    generated = Generated(model_server)
    with httpx.stream(
        "POST", url, json=chat("Tell a long story.", True), headers=auth, timeout=180
    ) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        received = [line for _, line in zip(range(10), lines, strict=False)]
        assert any(line.startswith("data: {") for line in received)
        assert running(model_server) >= 1  # generating right now
    generated.assert_aborted()
    # accounted for what it generated (vLLM's usage in every chunk), not 0 and not everything
    wait_for(lambda: _rows(app) != [], "the usage row", DEADLINE)
    [(status, completion_tokens)] = _rows(app)
    assert status == 499
    assert 0 < completion_tokens < MAX_TOKENS


def test_closing_before_the_first_token_stops_generation(
    app_and_auth: AppAndAuth, model_server: ModelServer
) -> None:
    app, auth = app_and_auth
    url = f"{app.url}/v1/chat/completions"
    prompt = "Summarise this text. " + "The quick brown fox jumps over the lazy dog. " * 150
    generated = Generated(model_server)
    with httpx.stream("POST", url, json=chat(prompt, True), headers=auth, timeout=180) as response:
        assert response.status_code == 200  # headers are sent once the upstream accepted it
        wait_for(lambda: running(model_server) >= 1, "vLLM runs the request", DEADLINE)
    generated.assert_aborted()


def test_giving_up_on_a_non_streaming_answer_stops_generation(
    app_and_auth: AppAndAuth, model_server: ModelServer
) -> None:
    app, auth = app_and_auth
    generated = Generated(model_server)
    # A raw connection, closed once vLLM is generating the answer: a client's read timeout
    # would give up after a fixed time, which on a busy machine may come before that.
    address = urlsplit(app.url)
    body = json.dumps(chat("Write an essay.", False)).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {address.netloc}\r\n"
        f"Authorization: {auth['Authorization']}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection((address.hostname, address.port), timeout=DEADLINE) as client:
        client.sendall(head.encode() + body)
        wait_for(lambda: running(model_server) >= 1, "vLLM runs the request", DEADLINE)
    generated.assert_aborted()
    wait_for(lambda: _statuses(app) != [], "the request's status recorded", DEADLINE)
    assert _statuses(app) == [499]


def _statuses(app: LiveServer) -> list[int]:
    async def read() -> list[int]:
        from switchboard.usage.tables import UsageRecord

        await app.app.state.resources.usage.flush()
        return [r["status"] for r in await UsageRecord.select(UsageRecord.status)]

    return app.run(read())


def _rows(app: LiveServer) -> list[tuple[int, int]]:
    async def read() -> list[tuple[int, int]]:
        from switchboard.usage.tables import UsageRecord

        await app.app.state.resources.usage.flush()
        rows = await UsageRecord.select(UsageRecord.status, UsageRecord.completion_tokens)
        return [(r["status"], r["completion_tokens"]) for r in rows]

    return app.run(read())

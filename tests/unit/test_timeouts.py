"""Timeouts (issue 25, item 2): connect, first byte and total are separate and do what their
names say. A non-streamed answer comes whole, so only the total bounds it (the first-byte
timeout was used as a read timeout and cut answers after 120 s); a stream must start within
the first-byte timeout and end within the total. When the gateway gives up, the upstream
request is closed, so vLLM aborts the generation. The defaults never cut a generation shorter
than the OpenAI SDK's own 600 s."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from switchboard.app import create_app
from switchboard.settings import Settings
from tests.conftest import SettingsFactory, mint_key_in
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer
from tests.support.socket_upstream import upstream_on_socket
from tests.support.waiting import wait_for

CHAT = "/v1/chat/completions"
BODY = {"model": "fake-model", "messages": [{"role": "user", "content": "a b c"}]}


@pytest.fixture
def api(make_settings: SettingsFactory, fake_upstream: FakeUpstream) -> Iterator[httpx.Client]:
    """The app in front of the fake on a real socket: the real client, its real timeouts."""
    with upstream_on_socket(fake_upstream) as url:
        settings = make_settings(
            upstream_urls=url, upstream_first_byte_timeout=1, upstream_total_timeout=4
        )
        yield from _client(settings)


def _client(settings: Settings) -> Iterator[httpx.Client]:
    server = LiveServer(create_app(settings))
    server.start()
    try:
        secret = server.run(mint_key_in(server.app, "patient"))
        headers = {"Authorization": f"Bearer {secret}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
            yield client
    finally:
        server.stop()


def test_the_defaults_never_cut_a_generation_shorter_than_the_sdks_600_seconds() -> None:
    defaults = Settings()
    assert defaults.upstream_first_byte_timeout >= 600
    assert defaults.upstream_total_timeout >= 600


def test_a_whole_answer_longer_than_the_first_byte_timeout_is_relayed(
    api: httpx.Client, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.delay = 2.0  # past the first-byte timeout (1 s), within the total (4 s)
    response = api.post(CHAT, json=BODY)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "a b c"


def test_an_answer_past_the_total_is_a_504(api: httpx.Client, fake_upstream: FakeUpstream) -> None:
    fake_upstream.delay = 6.0
    response = api.post(CHAT, json=BODY)
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "timeout"


def test_a_stream_that_does_not_start_in_time_is_cut_and_its_request_closed(
    api: httpx.Client, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.chunk_delay = 2.0  # the first event after 2 s: past the first-byte timeout
    events = api.post(CHAT, json={**BODY, "stream": True}).text
    assert '"code":"timeout"' in events.replace(" ", ""), events
    wait_for(lambda: fake_upstream.stream_endings == ["closed"], "the upstream request closed")


def test_a_stream_that_started_may_run_past_the_first_byte_timeout(
    api: httpx.Client, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.chunk_delay = 0.4  # every event within a second, 2 s in all
    events = api.post(CHAT, json={**BODY, "stream": True}).text
    assert "timeout" not in events
    assert events.rstrip().endswith("data: [DONE]")


def test_a_stream_past_the_total_is_cut_and_its_request_closed(
    api: httpx.Client, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.chunk_delay = 0.9  # started in time, but 5 events x 0.9 s pass the total
    body: dict[str, Any] = {**BODY, "messages": [{"role": "user", "content": "a b c d e f"}]}
    events = api.post(CHAT, json={**body, "stream": True}).text
    assert '"code":"timeout"' in events.replace(" ", ""), events
    wait_for(lambda: fake_upstream.stream_endings == ["closed"], "the upstream request closed")

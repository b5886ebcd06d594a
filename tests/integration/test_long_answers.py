"""A non-streamed answer that takes 150 seconds is relayed with the default settings (issue 25,
item 2): the gateway used its first-byte timeout (120 s) as a read timeout and answered 504
where vLLM answers at 139 s. A slow fake model server on a real socket stands in for the model
(the CPU model cannot be made to take a known 150 s)."""

from __future__ import annotations

import httpx

from switchboard.app import create_app
from tests.conftest import SettingsFactory, mint_key_in
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer
from tests.support.socket_upstream import upstream_on_socket

LONG = 150.0


def test_a_150_second_answer_is_relayed_with_the_defaults(
    make_settings: SettingsFactory, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.delay = LONG
    with upstream_on_socket(fake_upstream) as url:
        server = LiveServer(create_app(make_settings(upstream_urls=url))).start()
        try:
            secret = server.run(mint_key_in(server.app, "patient"))
            body = {"model": "fake-model", "messages": [{"role": "user", "content": "slow one"}]}
            response = httpx.post(
                f"{server.url}/v1/chat/completions",
                json=body,
                timeout=LONG * 3,
                headers={"Authorization": f"Bearer {secret}"},
            )
        finally:
            server.stop()
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "slow one"

"""A non-streamed answer that takes 150 seconds is relayed with the default settings (issue 25,
item 2): the gateway used its first-byte timeout (120 s) as a read timeout and answered 504
where vLLM answers at 139 s. A slow fake model server on a real socket stands in for the model
(the CPU model cannot be made to take a known 150 s), in front of the gateway as production runs
it (``switchboard serve``, defaults only).

The answer is 150 seconds of waiting and no work: it starts when the run starts and the test
checks it at its turn (``start_early``, tests/support/early.py). Everything it uses is its own:
its own fake model server, data directory and gateway process."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from concurrent.futures import Future
from pathlib import Path

import httpx
import pytest

from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import gateway_env, gateway_process
from tests.support.socket_upstream import upstream_on_socket

LONG = 150.0


def relay_a_long_answer() -> httpx.Response:
    """One completion the fake model answers after LONG seconds, through a gateway that runs on
    the defaults (its own data directory, model server and key)."""
    fake = FakeUpstream()
    fake.delay = LONG
    with (
        tempfile.TemporaryDirectory(prefix="sb-long-answer-") as data,
        upstream_on_socket(fake) as url,
    ):
        settings = {"upstream_urls": url, "default_model": "fake-model", "chat_titles": "false"}
        env = gateway_env(Path(data), **settings)
        minted = subprocess.run(
            [sys.executable, "-m", "switchboard.cli", "keys", "create", "--user", "patient"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        secret = minted.stdout.strip().splitlines()[-1]
        with gateway_process(Path(data), **settings) as (_, base):
            body = {"model": "fake-model", "messages": [{"role": "user", "content": "slow one"}]}
            return httpx.post(
                f"{base}/v1/chat/completions",
                json=body,
                timeout=LONG * 3,
                headers={"Authorization": f"Bearer {secret}"},
            )


@pytest.mark.start_early.with_args(relay_a_long_answer)
def test_a_150_second_answer_is_relayed_with_the_defaults(early: Future[httpx.Response]) -> None:
    response = early.result(timeout=LONG * 4)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "slow one"

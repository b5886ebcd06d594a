"""/readyz is 503 while the model server is stopped and 200 again once it is back."""

from __future__ import annotations

import os

import httpx
import pytest

from switchboard.devstack.model_server import ModelServer
from tests.conftest import mint_key_in
from tests.integration.conftest import AppFactory
from tests.support.waiting import wait_for

DEADLINE = 120.0
"""Seconds readiness may take to follow the model server on a busy machine (it checks every
0.5 s here)."""


def wait_for_status(url: str, status: int) -> httpx.Response:
    """The first response with ``status`` (the failure shows the last one)."""
    last: list[httpx.Response] = []

    def answers() -> bool:
        last[:] = [httpx.get(url, timeout=30)]
        return last[0].status_code == status

    wait_for(answers, lambda: f"{url} answers {status} (last: {last[0].text})", DEADLINE, 0.5)
    return last[0]


@pytest.mark.disruptive
@pytest.mark.timeout(2400)  # may start vLLM twice: once for the session, once here
def test_readiness_follows_the_model_server(
    live_app: AppFactory, model_server: ModelServer
) -> None:
    app = live_app()
    assert httpx.get(f"{app.url}/readyz", timeout=30).status_code == 200
    assert model_server.process is not None
    group = model_server.process.pid

    model_server.stop()
    with pytest.raises(ProcessLookupError):  # nothing of vLLM's process group is left
        os.killpg(group, 0)
    response = wait_for_status(f"{app.url}/readyz", 503)
    assert response.status_code == 503
    down = response.json()
    assert down["checks"]["model smollm2-135m-instruct"].startswith("down")
    assert set(down["model_servers"].values()) != {"ok"}
    secret = app.run(mint_key_in(app.app, "restart-user"))
    chat = httpx.post(
        f"{app.url}/v1/chat/completions",
        json={"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "x"}]},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=60,
    )
    assert chat.status_code == 503
    assert chat.json()["error"]["code"] == "model_unavailable"

    model_server.start()
    model_server.wait_ready(timeout=900)
    assert wait_for_status(f"{app.url}/readyz", 200).status_code == 200

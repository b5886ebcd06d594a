"""`make run`'s runner: starts what is missing, prints the URL once ready, stops cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from switchboard.devstack.model_server import ModelServer
from tests.conftest import REPO_ROOT
from tests.support.live import free_port


def test_stack_reaches_ready_answers_and_stops_on_sigterm(
    model_server: ModelServer, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")},
        "SWITCHBOARD_PORT": str(port),
        "SWITCHBOARD_DATA_DIR": str(REPO_ROOT / "var"),  # the shared model venv and model
        "SWITCHBOARD_DATABASE_URL": f"sqlite:///{tmp_path / 'stack.sqlite3'}",
        "SWITCHBOARD_MODEL_SERVER_PORT": str(model_server.port),  # already running: reused
        "SWITCHBOARD_UPSTREAM_URLS": f"{model_server.url}/v1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "switchboard.cli", "stack"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("switchboard: ready: open"):
            break
    assert lines, "the runner printed nothing"
    assert lines[-1].startswith(f"switchboard: ready: open http://127.0.0.1:{port}/"), lines
    try:
        page = httpx.post(f"http://127.0.0.1:{port}/ask", data={"message": "Hello"}, timeout=120)
        assert page.status_code == 200
        assert '<p id="answer">' in page.text
    finally:
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=60)
    assert process.returncode == 0, rest
    assert "switchboard: stopped" in rest
    # the app is gone, the reused model server was left alone
    try:
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
        app_still_up = True
    except httpx.ConnectError:
        app_still_up = False
    assert not app_still_up
    assert model_server.is_healthy()

"""`make run`'s runner: starts what is missing, prints the URL once ready, stops cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from switchboard.devstack.model_server import ModelServer
from tests.conftest import REPO_ROOT
from tests.support.live import free_port
from tests.support.waiting import wait_for
from tests.support.web_session import WebSession


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

    def said_ready() -> bool:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, f"the runner stopped printing: {lines}"
        lines.append(line)
        return line.startswith("switchboard: ready: open")

    wait_for(said_ready, "the runner says it is ready", 180, every=0)
    assert lines[-1].startswith(f"switchboard: ready: open http://127.0.0.1:{port}/"), lines
    hint = process.stdout.readline() + process.stdout.readline()
    assert "no administrator yet" in hint
    assert "switchboard users create YOUR_NAME --admin" in hint
    # README tells a newcomer the same two things, word for word
    readme = (REPO_ROOT / "README.md").read_text()
    assert "`.venv/bin/switchboard users create YOUR_NAME --admin`" in readme
    assert "prints the URL (`http://127.0.0.1:8000/`)" in readme
    try:
        created = subprocess.run(
            [
                sys.executable,
                "-m",
                "switchboard.cli",
                "users",
                "create",
                "first",
                "--admin",
                "--password",
                "first-admin-pw",
            ],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert created.returncode == 0, created.stderr
        with WebSession(f"http://127.0.0.1:{port}") as session:
            assert session.sign_in("first", "first-admin-pw").status_code == 303
            conversation = session.new_conversation()
            sent = session.post(f"/chat/{conversation}/messages", {"content": "Hello"})
            assert sent.status_code == 303
            assert 'class="body markdown"><p>' in session.get(f"/chat/{conversation}").text
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

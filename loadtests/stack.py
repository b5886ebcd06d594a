"""The embedded stack for benchmarks and load tests: the vLLM CPU server (``make model`` installs
it) and the gateway under granian on a throwaway SQLite database, with accounts provisioned:
a person who signs in, a key with limits no load test reaches, and an abusive key limited to
5 requests a minute. Everything on 127.0.0.1, stopped on exit."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from loadtests.common import free_port, wait_http

ROOT = Path(__file__).resolve().parents[1]
MODEL = "smollm2-135m-instruct"
HUGE = ("--rpm", "100000000", "--tpm", "2000000000")


@dataclass(frozen=True)
class Stack:
    model_url: str
    gateway_url: str
    username: str
    password: str
    key: str
    abuse_key: str


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "switchboard.cli", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.stdout.strip()


@contextlib.contextmanager
def embedded_stack(workers: int = 1) -> Iterator[Stack]:
    sys.path.insert(0, str(ROOT / "src"))
    from switchboard.devstack.model_server import ModelServer
    from switchboard.settings import load_settings

    data = Path(tempfile.mkdtemp(prefix="sb-load-"))
    model_port, gateway_port = free_port(), free_port()
    settings = load_settings({"SWITCHBOARD_DATA_DIR": str(ROOT / "var")}, dotenv=data / "none")
    server = ModelServer(settings, port=model_port, log_path=data / "vllm.log")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWITCHBOARD_", "PROMETHEUS"))}
    env.update(
        {
            "SWITCHBOARD_DATA_DIR": str(data),
            "SWITCHBOARD_PORT": str(gateway_port),
            "SWITCHBOARD_UPSTREAM_URLS": f"http://127.0.0.1:{model_port}/v1",
            "SWITCHBOARD_DEFAULT_MODEL": MODEL,
            "SWITCHBOARD_LOG_LEVEL": "WARNING",
            "SWITCHBOARD_ENVIRONMENT": "test",
            "SWITCHBOARD_WORKERS": str(workers),
        }
    )
    redis = None
    if workers > 1:
        from tests.support.redis_server import RedisServer

        redis = RedisServer()
        env["SWITCHBOARD_REDIS_URL"] = redis.url
    password = secrets.token_urlsafe(16)
    _cli(env, "users", "create", "loadtest", "--password", password, *HUGE)
    key = _cli(env, "keys", "create", "--user", "loadtest", "--name", "load").split()[-1]
    abuse = _cli(env, "keys", "create", "--user", "loadtest", "--rpm", "5").split()[-1]
    print("stack: starting vLLM on the CPU (2-4 minutes)", flush=True)
    server.start()
    gateway = None
    try:
        server.wait_ready(timeout=900)
        gateway = subprocess.Popen(
            [sys.executable, "-m", "switchboard.cli", "serve"], env=env, start_new_session=True
        )
        wait_http(f"http://127.0.0.1:{gateway_port}/readyz", gateway)
        yield Stack(
            server.url, f"http://127.0.0.1:{gateway_port}", "loadtest", password, key, abuse
        )
    finally:
        if gateway is not None:
            gateway.terminate()
            gateway.wait(timeout=90)
        server.stop()
        if redis is not None:
            redis.stop()
        shutil.rmtree(data, ignore_errors=True)

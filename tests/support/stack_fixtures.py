"""Fixtures for the real stack: the vLLM CPU server (once per run) and the app on a socket."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from switchboard.app import create_app
from switchboard.devstack.model_server import ModelServer
from switchboard.settings import Settings, load_settings
from tests.conftest import ARTIFACTS, REPO_ROOT
from tests.support.early import start_model_server_with
from tests.support.live import LiveServer
from tests.support.redis_server import RedisServer

MODEL = "smollm2-135m-instruct"
# Not 8001: a developer's `make run` may be using it while the suite runs.
MODEL_PORT = int(os.environ.get("SWITCHBOARD_TEST_MODEL_PORT", "18001"))


class SharedModelServer:
    """The run's one vLLM: started when collection ends if a selected test needs it
    (tests/support/early.py), or by the first test that asks for it; stopped when the run
    ends."""

    server: ModelServer | None = None
    failure: BaseException | None = None

    @classmethod
    def start(cls) -> None:
        if cls.server is not None or cls.failure is not None:
            return
        settings = load_settings(
            {"SWITCHBOARD_DATA_DIR": str(REPO_ROOT / "var")}, dotenv=Path("/none")
        )
        server = ModelServer(settings, port=MODEL_PORT, log_path=ARTIFACTS / "model-server.log")
        try:
            server.install()
            server.start()
        except Exception as error:  # the tests that need it fail with it, not the whole run
            cls.failure = error
            return
        cls.server = server

    @classmethod
    def stop(cls) -> None:
        if cls.server is not None:
            cls.server.stop()


start_model_server_with(SharedModelServer.start)


def pytest_sessionfinish(session: pytest.Session) -> None:
    SharedModelServer.stop()


@pytest.fixture(scope="session")
def model_server() -> ModelServer:
    """vLLM's OpenAI server on the CPU with SmolLM2-135M-Instruct, started once per run."""
    SharedModelServer.start()
    if SharedModelServer.failure is not None:
        raise SharedModelServer.failure
    server = SharedModelServer.server
    assert server is not None
    server.wait_ready(timeout=900)
    return server


AppFactory = Callable[..., LiveServer]


@pytest.fixture
def live_app(model_server: ModelServer, tmp_path: Path) -> Iterator[AppFactory]:
    """Start the app on a free port in front of the real model server (settings overridable)."""
    started: list[LiveServer] = []

    def start(**overrides: Any) -> LiveServer:
        settings = app_settings(model_server, tmp_path, **overrides)
        server = LiveServer(create_app(settings)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def app_settings(model_server: ModelServer, data_dir: Path, **overrides: Any) -> Settings:
    env = {
        "SWITCHBOARD_ENVIRONMENT": "test",
        "SWITCHBOARD_DATA_DIR": str(data_dir),
        "SWITCHBOARD_UPSTREAM_URLS": f"{model_server.url}/v1",
        "SWITCHBOARD_UPSTREAM_HEALTH_INTERVAL": "0.5",
        "SWITCHBOARD_DEFAULT_MODEL": MODEL,
    }
    env.update({f"SWITCHBOARD_{k.upper()}": str(v) for k, v in overrides.items()})
    return load_settings(env, dotenv=Path("/none"))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A throwaway redis-server for the whole run."""
    server = RedisServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, which the test may stop."""
    server = RedisServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The shared redis-server, emptied for this test (ids repeat across tests' databases)."""
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url

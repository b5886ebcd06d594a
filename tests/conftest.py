"""Shared fixtures. Settings are built explicitly per test; the process environment holds no
SWITCHBOARD_* variable so that a developer's shell cannot change what the tests see."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

for _name in [n for n in os.environ if n.startswith("SWITCHBOARD_")]:
    del os.environ[_name]
os.environ["PICCOLO_CONF"] = "switchboard.piccolo_conf"

from switchboard.app import create_app  # noqa: E402
from switchboard.settings import Settings, load_settings  # noqa: E402
from tests.support.fake_upstream import FakeUpstream  # noqa: E402
from tests.support.live import LiveServer  # noqa: E402
from tests.support.web_session import WebSession  # noqa: E402

pytest_plugins = [
    "tests.support.early",
    "tests.support.stack_fixtures",
    "tests.support.postgres",
    "tests.support.suites",
]
# tests/images, tests/deploy and tests/scale need a container engine and the images `make
# test-images` builds: without the variable their target sets, tests/support/suites.py skips
# their tests, saying why. `make test` collects and skips them.

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO_ROOT / "test-artifacts"

SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(tmp_path: Path) -> SettingsFactory:
    """Settings for a test: a private SQLite file, then any overrides (field=value)."""

    def build(**overrides: Any) -> Settings:
        env = {
            "SWITCHBOARD_ENVIRONMENT": "test",
            "SWITCHBOARD_DATA_DIR": str(tmp_path),
            "SWITCHBOARD_UPSTREAM_URLS": "http://upstream.test/v1",
            "SWITCHBOARD_DEFAULT_MODEL": "fake-model",
            # the fake model's tests count its requests: a title is one more (test_titles.py)
            "SWITCHBOARD_CHAT_TITLES": "false",
        }
        env.update({f"SWITCHBOARD_{k.upper()}": str(v) for k, v in overrides.items()})
        return load_settings(env, dotenv=tmp_path / "absent.env")

    return build


@pytest.fixture
def fake_upstream() -> FakeUpstream:
    return FakeUpstream()


@pytest.fixture
def app_overrides() -> dict[str, Any]:
    """Settings overrides for the ``client`` fixture (override the fixture to change them)."""
    return {}


@pytest.fixture
async def client(
    make_settings: SettingsFactory, fake_upstream: FakeUpstream, app_overrides: dict[str, Any]
) -> AsyncIterator[AsyncTestClient[Any]]:
    """The app in process, in front of the fake upstream, sending a valid API key."""
    app = create_app(make_settings(**app_overrides), upstream_transport=fake_upstream.transport())
    async with AsyncTestClient(app=app) as test_client:
        secret = await mint_key(test_client, "alice")
        test_client.headers["Authorization"] = f"Bearer {secret}"
        yield test_client


async def mint_key(client: AsyncTestClient[Any] | Any, username: str, **limits: Any) -> str:
    """Create (if needed) ``username`` and a key for them; return the secret."""
    return await mint_key_in(client.app, username, **limits)


async def mint_key_in(app: Litestar, username: str, **limits: Any) -> str:
    from switchboard.accounts.services import create_user, get_user_by_name
    from switchboard.resources import Resources

    user = await get_user_by_name(username) or await create_user(username)
    resources: Resources = app.state.resources
    return (await resources.keys.mint(int(user.id), **limits)).secret


@pytest.fixture
def live_fake(make_settings: SettingsFactory, fake_upstream: FakeUpstream) -> Iterator[LiveServer]:
    """The app on a real socket in front of the fake upstream: for truly concurrent requests
    (the in-process test client handles one request at a time)."""
    app = create_app(make_settings(), upstream_transport=fake_upstream.transport())
    server = LiveServer(app).start()
    try:
        yield server
    finally:
        server.stop()


WebFactory = Callable[[str], WebSession]


@pytest.fixture
def web() -> Iterator[WebFactory]:
    """Opens browser-like sessions on a base URL (``web(app.url)``); all closed after the test."""
    with contextlib.ExitStack() as opened:
        yield lambda base_url: opened.enter_context(WebSession(base_url))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that need no model server first (it starts meanwhile: tests/support/early.py),
    then the others, then the browser tests, then the tests whose work started with the run
    (``start_early``: by then it is done); tests that stop shared servers (marked
    ``disruptive``) run last."""
    from tests.support.early import EARLY, needs_model_server  # a plugin: imported once registered

    def order(item: pytest.Item) -> int:
        if item.get_closest_marker("disruptive"):
            return 4
        if item.get_closest_marker(EARLY):
            return 3
        if "/e2e/" in str(item.path):
            return 2
        return 1 if needs_model_server(item) else 0

    items.sort(key=order)

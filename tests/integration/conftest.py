"""Integration tests use the shared stack fixtures (tests/support/stack_fixtures.py), and
``pg_app``: the app on PostgreSQL in front of the fake model server."""

from collections.abc import Iterator

import pytest

from switchboard.app import create_app
from tests.conftest import SettingsFactory
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer
from tests.support.postgres import PostgresDatabase
from tests.support.stack_fixtures import MODEL, MODEL_PORT, AppFactory, app_settings

__all__ = ["MODEL", "MODEL_PORT", "AppFactory", "app_settings"]


@pytest.fixture
def pg_app(
    postgres: PostgresDatabase, make_settings: SettingsFactory, fake_upstream: FakeUpstream
) -> Iterator[LiveServer]:
    """The app on a fresh PostgreSQL database (migrated as it starts), on a real socket."""
    app = create_app(
        make_settings(database_url=postgres.url), upstream_transport=fake_upstream.transport()
    )
    server = LiveServer(app).start()
    try:
        yield server
    finally:
        server.stop()

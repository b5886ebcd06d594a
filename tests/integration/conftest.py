"""Integration tests use the shared stack fixtures (tests/support/stack_fixtures.py)."""

from tests.support.stack_fixtures import MODEL, MODEL_PORT, AppFactory, app_settings

__all__ = ["MODEL", "MODEL_PORT", "AppFactory", "app_settings"]

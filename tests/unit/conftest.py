"""Unit tests need no server: a test here that asks for the model server, PostgreSQL or Redis
fails, saying where it belongs (tests/integration, with the run's shared servers)."""

from __future__ import annotations

import pytest

ELSEWHERE = "unit tests start no server: a test that needs {} belongs in tests/integration"


@pytest.fixture(scope="session")
def model_server() -> None:
    pytest.fail(ELSEWHERE.format("the model server"), pytrace=False)


@pytest.fixture(scope="session")
def postgres_server() -> None:
    pytest.fail(ELSEWHERE.format("PostgreSQL"), pytrace=False)


@pytest.fixture(scope="session")
def redis_server() -> None:
    pytest.fail(ELSEWHERE.format("Redis"), pytrace=False)


@pytest.fixture
def own_redis() -> None:
    pytest.fail(ELSEWHERE.format("Redis"), pytrace=False)

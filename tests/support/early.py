"""Waits that take minutes and no CPU, overlapped with the rest of the run (a pytest plugin,
loaded by tests/conftest.py).

* The vLLM CPU server starts as soon as collection ends when a selected test needs it; the tests
  that do not need it run first, while it starts (tests/conftest.py orders them), and the
  ``model_server`` fixture then only waits for it to be ready.
* ``@pytest.mark.start_early.with_args(work)`` runs ``work()`` in a thread as soon as
  collection ends, if the test is selected; the test takes its ``concurrent.futures.Future``
  from the ``early`` fixture and checks the result at its turn. For work that waits minutes on
  a clock (a 150-second answer), never for work that shares state with other tests: ``work``
  must bring up its own processes.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

EARLY = "start_early"
MODEL_FIXTURE = "model_server"


class Early:
    """What this run started early: the futures of the marked tests, by node id."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="early")
        self.futures: dict[str, Future[Any]] = {}
        self.model_server_start: Callable[[], None] | None = None


_run = Early()


def needs_model_server(item: pytest.Item) -> bool:
    return MODEL_FIXTURE in getattr(item, "fixturenames", ())


def start_model_server_with(start: Callable[[], None]) -> None:
    """How the model server starts (stack_fixtures registers it; called at most once)."""
    _run.model_server_start = start


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{EARLY}(work): run work() in a thread when the run starts; the test reads the "
        "result from the `early` fixture (tests/support/early.py)",
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    for item in session.items:
        marker = item.get_closest_marker(EARLY)
        if marker is not None:
            _run.futures[item.nodeid] = _run.pool.submit(marker.args[0])
    if _run.model_server_start is not None and any(map(needs_model_server, session.items)):
        _run.model_server_start()


@pytest.fixture
def early(request: pytest.FixtureRequest) -> Future[Any]:
    """The future of this test's ``start_early`` work."""
    future = _run.futures.get(request.node.nodeid)
    if future is None:
        pytest.fail(f"{request.node.nodeid} has no @pytest.mark.{EARLY}(work)", pytrace=False)
    return future


def pytest_unconfigure(config: pytest.Config) -> None:
    _run.pool.shutdown(wait=True, cancel_futures=True)

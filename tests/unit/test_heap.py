"""While the app serves, the heap it built at start-up is frozen out of the collector's passes
and the young generation is collected less often; both are undone when it stops (web/heap.py)."""

from __future__ import annotations

import gc
import weakref
from typing import Any

from litestar.testing import AsyncTestClient

from switchboard.app import create_app
from switchboard.web.heap import THRESHOLDS
from tests.conftest import SettingsFactory
from tests.support.fake_upstream import FakeUpstream


async def test_the_start_up_heap_is_frozen_while_serving_and_thawed_after(
    make_settings: SettingsFactory, fake_upstream: FakeUpstream
) -> None:
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    app = create_app(make_settings(), upstream_transport=fake_upstream.transport())
    async with AsyncTestClient(app=app) as client:
        assert gc.get_freeze_count() > 10_000  # the modules, the app, its routes and resources
        assert gc.get_threshold() == THRESHOLDS
        response = await client.get("/healthz")
        assert response.status_code == 200
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before


def test_collections_still_free_cycles_while_tuned() -> None:
    """Cycles made while serving are still collected: the collector is tuned, not off."""
    from switchboard.web.heap import tuned_for_serving

    class Node:
        other: Any = None

    with tuned_for_serving():
        first, second = Node(), Node()
        first.other, second.other = second, first
        gone = weakref.ref(first)
        del first, second
        gc.collect()
        assert gone() is None

"""The business gauges' figures: today's and this week's usage, active keys, the top users and
keys, computed by the usage feature and published by observability."""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from switchboard.accounts.services import create_user
from switchboard.keys.services import KeyService, count_active
from switchboard.keys.tables import ApiKey
from switchboard.observability.business import publish
from switchboard.usage.business import business_figures
from switchboard.usage.writer import UsageWriter
from tests.unit.test_usage import event


async def test_figures_count_today_the_week_and_live_keys_and_rank_the_top(
    client: AsyncTestClient[Any],
) -> None:
    ada = int((await create_user("ada", password="ada-password-1")).id)  # pragma: allowlist secret
    bob = int((await create_user("bob", password="bob-password-1")).id)  # pragma: allowlist secret
    keys = KeyService()
    before = await count_active(dt.datetime.now(dt.UTC))  # the client fixture's own
    ada_key = await keys.mint(ada)
    bob_key = await keys.mint(bob)
    revoked = await keys.mint(bob)
    await keys.revoke(revoked.key_id)
    expired = await keys.mint(bob)
    yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    await ApiKey.update({ApiKey.expires_at: yesterday}).where(ApiKey.id == expired.key_id)
    now = dt.datetime.now(dt.UTC)
    writer = UsageWriter(flush_interval=3600, batch_size=100)
    writer.record(event(user_id=ada, key_id=ada_key.key_id, prompt_tokens=10, completion_tokens=5))
    writer.record(event(user_id=bob, key_id=bob_key.key_id, prompt_tokens=30, completion_tokens=0))
    writer.record(
        event(user_id=bob, key_id=None, source="chat", prompt_tokens=1, completion_tokens=1)
    )
    three_days_ago = now - dt.timedelta(days=3)
    writer.record(event(user_id=ada, key_id=ada_key.key_id, prompt_tokens=500, at=three_days_ago))
    await writer.flush()

    figures = await business_figures()

    assert figures.active_users == {"1d": 2, "7d": 2}
    assert (figures.requests_today, figures.tokens_today) == (3, 47)
    assert figures.active_keys == before + 2  # not the revoked one, not the expired one
    assert figures.top_users == [("bob", 32), ("ada", 15)]
    assert figures.top_keys == [(f"{bob_key.prefix}…", 30), (f"{ada_key.prefix}…", 15)]

    publish(figures)
    assert REGISTRY.get_sample_value("switchboard_tokens_today") == 47
    top = {"rank": "1", "user": "bob"}
    assert REGISTRY.get_sample_value("switchboard_top_user_tokens", top) == 32

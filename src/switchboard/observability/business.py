"""Business gauges from cheap periodic database aggregates (every ``interval`` seconds)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from switchboard.accounts.tables import User
from switchboard.keys.tables import ApiKey
from switchboard.observability.metrics import (
    ACTIVE_KEYS,
    ACTIVE_USERS,
    REQUESTS_TODAY,
    TOKENS_TODAY,
    TOP_KEY_TOKENS,
    TOP_USER_TOKENS,
    timed,
)
from switchboard.usage.tables import UsageRecord

log = logging.getLogger(__name__)
TOP_N = 10


async def refresh_business_metrics() -> None:
    now = dt.datetime.now(dt.UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    with timed("business_aggregates"):
        for window, days in (("1d", 1), ("7d", 7)):
            rows = await UsageRecord.raw(
                "SELECT COUNT(DISTINCT user_id) AS users FROM usage_records WHERE created_at >= {}",
                now - dt.timedelta(days=days),
            )
            ACTIVE_USERS.labels(window).set(rows[0]["users"] if rows else 0)
        today = await UsageRecord.raw(
            "SELECT COUNT(*) AS requests, COALESCE(SUM(total_tokens), 0) AS tokens "
            "FROM usage_records WHERE created_at >= {}",
            midnight,
        )
        REQUESTS_TODAY.set(today[0]["requests"])
        TOKENS_TODAY.set(today[0]["tokens"])
        keys = await ApiKey.count().where(
            ApiKey.revoked_at.is_null() & (ApiKey.expires_at.is_null() | (ApiKey.expires_at > now))
        )
        ACTIVE_KEYS.set(keys)
        top = await UsageRecord.raw(
            "SELECT user_id, SUM(total_tokens) AS tokens FROM usage_records "
            "WHERE created_at >= {} AND user_id IS NOT NULL "
            "GROUP BY user_id ORDER BY tokens DESC LIMIT {}",
            midnight,
            TOP_N,
        )
        names = {
            row["id"]: row["username"]
            for row in await User.select(User.id, User.username).where(
                User.id.is_in([r["user_id"] for r in top] or [-1])
            )
        }
        top_keys = await UsageRecord.raw(
            "SELECT u.key_id, SUM(u.total_tokens) AS tokens, k.prefix FROM usage_records u "
            "JOIN api_keys k ON k.id = u.key_id WHERE u.created_at >= {} "
            "GROUP BY u.key_id, k.prefix ORDER BY tokens DESC LIMIT {}",
            midnight,
            TOP_N,
        )
    TOP_KEY_TOKENS.clear()
    for rank, row in enumerate(top_keys, start=1):
        TOP_KEY_TOKENS.labels(str(rank), f"{row['prefix']}…").set(row["tokens"])
    TOP_USER_TOKENS.clear()
    for rank, row in enumerate(top, start=1):
        TOP_USER_TOKENS.labels(str(rank), names.get(row["user_id"], "?")).set(row["tokens"])


async def refresh_forever(interval: float) -> None:
    while True:
        try:
            await refresh_business_metrics()
        except Exception:
            log.exception("business metrics refresh failed")
        await asyncio.sleep(interval)

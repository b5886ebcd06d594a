"""The figures behind the business gauges: cheap aggregates over today's and this week's usage.

Other features' data comes through their services (names, key labels, active keys)."""

from __future__ import annotations

import datetime as dt

from switchboard.accounts.services import usernames
from switchboard.keys.services import count_active, key_prefixes
from switchboard.observability.business import BusinessFigures
from switchboard.usage.tables import UsageRecord

TOP_N = 10


async def business_figures() -> BusinessFigures:
    now = dt.datetime.now(dt.UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    active_users = {}
    for window, days in (("1d", 1), ("7d", 7)):
        rows = await UsageRecord.raw(
            "SELECT COUNT(DISTINCT user_id) AS users FROM usage_records WHERE created_at >= {}",
            now - dt.timedelta(days=days),
        )
        active_users[window] = int(rows[0]["users"]) if rows else 0
    today = await UsageRecord.raw(
        "SELECT COUNT(*) AS requests, COALESCE(SUM(total_tokens), 0) AS tokens "
        "FROM usage_records WHERE created_at >= {}",
        midnight,
    )
    top_users = await UsageRecord.raw(
        "SELECT user_id, SUM(total_tokens) AS tokens FROM usage_records "
        "WHERE created_at >= {} AND user_id IS NOT NULL "
        "GROUP BY user_id ORDER BY tokens DESC LIMIT {}",
        midnight,
        TOP_N,
    )
    top_keys = await UsageRecord.raw(
        "SELECT key_id, SUM(total_tokens) AS tokens FROM usage_records "
        "WHERE created_at >= {} AND key_id IS NOT NULL "
        "GROUP BY key_id ORDER BY tokens DESC LIMIT {}",
        midnight,
        TOP_N,
    )
    names = await usernames([int(row["user_id"]) for row in top_users])
    prefixes = await key_prefixes([int(row["key_id"]) for row in top_keys])
    return BusinessFigures(
        active_users=active_users,
        requests_today=int(today[0]["requests"]),
        tokens_today=int(today[0]["tokens"]),
        active_keys=await count_active(now),
        top_users=[(names.get(int(r["user_id"]), "?"), int(r["tokens"])) for r in top_users],
        top_keys=[(prefixes.get(int(r["key_id"]), "?"), int(r["tokens"])) for r in top_keys],
    )

"""The figures behind the business gauges: two aggregates over this week's and today's usage.

Each scan reads every row in its window, a few hundred milliseconds a day of a busy gateway's
rows on SQLite: they run on a thread of lower priority (``db.bulk.select_rows``), so requests
keep the core while they do. Other features' data comes through their services (names, key
labels, active keys)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from concurrent.futures import Executor

from switchboard.accounts.services import usernames
from switchboard.db.bulk import select_rows
from switchboard.db.engine import AnyEngine
from switchboard.keys.services import count_active, key_prefixes
from switchboard.observability.business import BusinessFigures

TOP_N = 10

ACTIVE_USERS = (
    "SELECT COUNT(DISTINCT user_id) AS week, "
    "COUNT(DISTINCT CASE WHEN created_at >= ? THEN user_id END) AS day "
    "FROM usage_records WHERE created_at >= ?"
)
TODAY = (
    "SELECT user_id, key_id, COUNT(*) AS requests, COALESCE(SUM(total_tokens), 0) AS tokens "
    "FROM usage_records WHERE created_at >= ? GROUP BY user_id, key_id"
)
"""Today's requests and tokens per key and person: few rows, folded into the totals and both
rankings here."""


async def business_figures(engine: AnyEngine, thread: Executor) -> BusinessFigures:
    now = dt.datetime.now(dt.UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    users = await select_rows(
        engine, ACTIVE_USERS, (now - dt.timedelta(days=1), now - dt.timedelta(days=7)), thread
    )
    today = await select_rows(engine, TODAY, (midnight,), thread)
    by_user: Counter[int] = Counter()
    by_key: Counter[int] = Counter()
    for row in today:
        if row["user_id"] is not None:
            by_user[int(row["user_id"])] += int(row["tokens"])
        if row["key_id"] is not None:
            by_key[int(row["key_id"])] += int(row["tokens"])
    top_users, top_keys = by_user.most_common(TOP_N), by_key.most_common(TOP_N)
    names = await usernames([user for user, _ in top_users])
    prefixes = await key_prefixes([key for key, _ in top_keys])
    return BusinessFigures(
        active_users={"1d": int(users[0]["day"]), "7d": int(users[0]["week"])},
        requests_today=sum(int(row["requests"]) for row in today),
        tokens_today=sum(int(row["tokens"]) for row in today),
        active_keys=await count_active(now),
        top_users=[(names.get(user, "?"), tokens) for user, tokens in top_users],
        top_keys=[(prefixes.get(key, "?"), tokens) for key, tokens in top_keys],
    )

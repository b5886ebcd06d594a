"""Usage totals for pages and metrics, and retention.

Totals per day group on ``created_at`` within a time range, so the (key, time) and (user, time)
indexes serve them even at millions of rows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import msgspec

from switchboard.usage.tables import UsageRecord

Subject = Literal["key", "user"]


class DailyTotal(msgspec.Struct, frozen=True):
    day: dt.date
    subject_id: int | None
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cache_hits: int
    errors: int


def day_expression() -> str:
    """The UTC day of ``created_at`` in this database's SQL."""
    from switchboard.db.engine import is_postgres

    if is_postgres(UsageRecord._meta.db):
        return "(created_at AT TIME ZONE 'UTC')::date"
    return "date(created_at)"


async def daily_totals(
    by: Subject,
    *,
    since: dt.datetime,
    until: dt.datetime | None = None,
    subject_id: int | None = None,
    user_id: int | None = None,
) -> list[DailyTotal]:
    """Requests and tokens per day, per key or per user (optionally only one of them).

    ``user_id``: only that user's requests (with ``by="key"``: their own keys' usage; a key id
    of a deleted key can come back on SQLite, and usage rows outlive keys)."""
    column = "key_id" if by == "key" else "user_id"
    until = until or dt.datetime.now(dt.UTC)
    where = "created_at >= {} AND created_at < {}"
    args: list[Any] = [since, until]
    if subject_id is not None:
        where += f" AND {column} = {{}}"
        args.append(subject_id)
    if user_id is not None:
        where += " AND user_id = {}"
        args.append(user_id)
    day = day_expression()
    sql = f"""
        SELECT {day} AS day, {column} AS subject_id, COUNT(*) AS requests,
               COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens,
               COALESCE(SUM(completion_tokens), 0) AS completion_tokens,
               COALESCE(SUM(total_tokens), 0) AS total_tokens,
               COALESCE(SUM(CASE WHEN cache_hit THEN 1 ELSE 0 END), 0) AS cache_hits,
               COALESCE(SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), 0) AS errors
        FROM usage_records WHERE {where}
        GROUP BY {day}, {column} ORDER BY day, subject_id
    """  # noqa: S608 - column and day come from the two literals above, values are bound  # nosec
    rows = await UsageRecord.raw(sql, *args)
    return [
        DailyTotal(
            day=row["day"]
            if isinstance(row["day"], dt.date)
            else dt.date.fromisoformat(row["day"]),
            subject_id=row["subject_id"],
            requests=int(row["requests"]),
            prompt_tokens=int(row["prompt_tokens"]),
            completion_tokens=int(row["completion_tokens"]),
            total_tokens=int(row["total_tokens"]),
            cache_hits=int(row["cache_hits"]),
            errors=int(row["errors"]),
        )
        for row in rows
    ]


def _as_date(value: dt.date | str) -> dt.date:
    """PostgreSQL gives a date; SQLite gives 'YYYY-MM-DD'."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


async def prune(older_than: dt.datetime, batch: int = 1000) -> int:
    """Delete rows older than ``older_than`` in batches (short transactions, no long locks)."""
    deleted = 0
    while True:
        ids = await (
            UsageRecord.select(UsageRecord.id)
            .where(UsageRecord.created_at < older_than)
            .limit(batch)
            .output(as_list=True)
        )
        if not ids:
            return deleted
        await UsageRecord.delete().where(UsageRecord.id.is_in(ids))
        deleted += len(ids)


async def totals_per_key(user_id: int, since: dt.datetime) -> dict[int, tuple[int, int]]:
    """Requests and tokens per key of one user since ``since`` (the keys page's 30 days)."""
    totals: dict[int, tuple[int, int]] = {}
    for total in await daily_totals("key", since=since, user_id=user_id):
        if total.subject_id is not None:
            requests, tokens = totals.get(total.subject_id, (0, 0))
            totals[total.subject_id] = (requests + total.requests, tokens + total.total_tokens)
    return totals

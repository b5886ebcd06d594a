"""Usage totals grouped by day, model or key over a time range (the usage API, page and CSV).

Like ``daily_totals``, one grouped query over ``created_at`` within the range, so the
(user, time) index serves it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from switchboard.usage.queries import day_expression
from switchboard.usage.tables import UsageRecord

GroupBy = Literal["day", "model", "key"]
GROUPINGS: tuple[GroupBy, ...] = ("day", "model", "key")


class GroupTotal(msgspec.Struct, frozen=True):
    group: str | int | None
    """The day (``YYYY-MM-DD``), the model, or the key id (``None``: the browser chat)."""
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cache_hits: int
    errors: int


def _group_expression(group_by: GroupBy) -> str:
    return {"day": day_expression(), "model": "model", "key": "key_id"}[group_by]


async def grouped_totals(
    group_by: GroupBy,
    *,
    since: dt.datetime,
    until: dt.datetime,
    user_id: int | None = None,
) -> list[GroupTotal]:
    """Requests and tokens per group in ``[since, until)``, of one user or everyone: days in
    order, models and keys by tokens (most first)."""
    group = _group_expression(group_by)
    where = "created_at >= {} AND created_at < {}"
    args: list[Any] = [since, until]
    if user_id is not None:
        where += " AND user_id = {}"
        args.append(user_id)
    # NULLS LAST: the browser chat (no key) after the keys on both databases (SQLite would put
    # it first, PostgreSQL last)
    order = "grp" if group_by == "day" else "total_tokens DESC, grp NULLS LAST"
    sql = f"""
        SELECT {group} AS grp, COUNT(*) AS requests,
               COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens,
               COALESCE(SUM(completion_tokens), 0) AS completion_tokens,
               COALESCE(SUM(total_tokens), 0) AS total_tokens,
               COALESCE(SUM(CASE WHEN cache_hit THEN 1 ELSE 0 END), 0) AS cache_hits,
               COALESCE(SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), 0) AS errors
        FROM usage_records WHERE {where}
        GROUP BY {group} ORDER BY {order}
    """  # noqa: S608 - group and order come from the literals above, values are bound  # nosec
    rows = await UsageRecord.raw(sql, *args)
    return [
        GroupTotal(
            group=row["grp"].isoformat() if isinstance(row["grp"], dt.date) else row["grp"],
            requests=int(row["requests"]),
            prompt_tokens=int(row["prompt_tokens"]),
            completion_tokens=int(row["completion_tokens"]),
            total_tokens=int(row["total_tokens"]),
            cache_hits=int(row["cache_hits"]),
            errors=int(row["errors"]),
        )
        for row in rows
    ]


def day_range(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """``[start 00:00, the day after end 00:00)`` in UTC (``end`` is included)."""
    since = dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC)
    if end >= dt.date.max:
        return since, dt.datetime.max.replace(tzinfo=dt.UTC)
    return since, dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)


class SpendRow(msgspec.Struct, frozen=True):
    user_id: int | None
    key_id: int | None
    model: str
    prompt_tokens: int
    completion_tokens: int


async def spend_rows(
    since: dt.datetime,
    until: dt.datetime,
    *,
    user_id: int | None = None,
    key_ids: Sequence[int] = (),
) -> list[SpendRow]:
    """Tokens per (user, key, model) in ``[since, until)``: what budgets are seeded from; only
    ``user_id``'s rows, of ``key_ids`` if any, when it is given (what the pages show: a key id
    SQLite reused never shows its former owner's rows)."""
    only = "AND user_id = {}" if user_id is not None else ""
    if user_id is not None and key_ids:
        only += f" AND key_id IN ({', '.join('{}' for _ in key_ids)})"
    values = [user_id, *key_ids] if user_id is not None else []
    # only placeholders are formatted in; the values are bound
    sql = f"""
        SELECT user_id, key_id, model, COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens,
               COALESCE(SUM(completion_tokens), 0) AS completion_tokens
        FROM usage_records WHERE created_at >= {{}} AND created_at < {{}} {only}
        GROUP BY user_id, key_id, model
    """  # noqa: S608  # nosec B608
    rows = await UsageRecord.raw(sql, since, until, *values)
    return [
        SpendRow(
            row["user_id"],
            row["key_id"],
            row["model"],
            int(row["prompt_tokens"]),
            int(row["completion_tokens"]),
        )
        for row in rows
    ]

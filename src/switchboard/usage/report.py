"""One person's usage over a range of days, grouped: for ``GET /v1/usage`` and the CSV download."""

from __future__ import annotations

import csv
import datetime as dt
import io

from switchboard.keys.services import key_labels
from switchboard.usage.breakdown import GroupBy, GroupTotal, day_range, grouped_totals
from switchboard.usage.schemas import UsageBucket, UsageReport, UsageTotals

BROWSER = "browser"
CSV_COLUMNS = (
    "group",
    "key_id",
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cache_hits",
    "errors",
)


def month_start(today: dt.date) -> dt.date:
    return today.replace(day=1)


async def usage_report(
    user_id: int, username: str, start: dt.date, end: dt.date, group_by: GroupBy
) -> UsageReport:
    """``start`` after ``end`` is an empty range, not an error."""
    totals: list[GroupTotal] = []
    if start <= end:
        since, until = day_range(start, end)
        totals = await grouped_totals(group_by, since=since, until=until, user_id=user_id)
    labels: dict[int, str] = {}
    if group_by == "key":
        labels = await key_labels([t.group for t in totals if isinstance(t.group, int)])
    data = [_bucket(total, group_by, labels) for total in totals]
    return UsageReport(
        start=start, end=end, group_by=group_by, user=username, data=data, total=_sum(data)
    )


def _bucket(total: GroupTotal, group_by: GroupBy, labels: dict[int, str]) -> UsageBucket:
    counts = {name: getattr(total, name) for name in CSV_COLUMNS[2:]}
    if group_by != "key":
        return UsageBucket(group=str(total.group), **counts)
    key_id = total.group if isinstance(total.group, int) else None
    label = BROWSER if key_id is None else labels.get(key_id, f"key #{key_id}")
    return UsageBucket(group=label, key_id=key_id, **counts)


def _sum(data: list[UsageBucket]) -> UsageTotals:
    return UsageTotals(**{name: sum(getattr(b, name) for b in data) for name in CSV_COLUMNS[2:]})


def as_csv(report: UsageReport) -> str:
    """The report's rows as CSV, one header line first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for bucket in report.data:
        row = [_cell(bucket.group), "" if bucket.key_id is None else bucket.key_id]
        writer.writerow(row + [getattr(bucket, name) for name in CSV_COLUMNS[2:]])
    return out.getvalue()


def _cell(text: str) -> str:
    """Text a spreadsheet would run as a formula (a model name is whatever a caller sent)
    is quoted."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text

"""The usage page: requests and tokens per day, model and key for the signed-in user, with a CSV
download; admins see everyone's totals per user and per key."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from typing import TYPE_CHECKING, Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.params import Parameter
from litestar.response import Template

from switchboard.accounts.guards import current_user, requires_user
from switchboard.accounts.services import usernames
from switchboard.keys.services import key_owner_labels
from switchboard.usage.breakdown import GroupBy
from switchboard.usage.chart import bar_chart
from switchboard.usage.queries import daily_totals
from switchboard.usage.report import as_csv, usage_report
from switchboard.usage.schemas import UsageReport
from switchboard.web.rendering import page

if TYPE_CHECKING:
    from switchboard.accounts.tables import User

DAYS = 30


def _days(since: dt.date) -> list[dt.date]:
    today = dt.datetime.now(dt.UTC).date()
    return [since + dt.timedelta(days=n) for n in range((today - since).days + 1)]


class UsageController(Controller):
    path = "/usage"
    guards = [requires_user]
    include_in_schema = False

    @get("/", name="usage")
    async def index(self, request: Request[Any, Any, Any]) -> Template:
        user = await current_user(request)
        assert user is not None
        now = dt.datetime.now(dt.UTC)
        since = (now - dt.timedelta(days=DAYS - 1)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        mine = {t.day: t for t in await daily_totals("user", since=since, subject_id=int(user.id))}
        days = _days(since.date())
        requests = [(d, mine[d].requests if d in mine else 0) for d in days]
        tokens = [(d, mine[d].total_tokens if d in mine else 0) for d in days]
        context: dict[str, Any] = {
            "user": user,
            "requests_chart": bar_chart(requests, "requests"),
            "tokens_chart": bar_chart(tokens, "tokens"),
            "total_requests": sum(value for _, value in requests),
            "total_tokens": sum(value for _, value in tokens),
            "per_user": [],
            "per_key": [],
            "by_model": (await _own(user, "model")).data,
            "by_key": (await _own(user, "key")).data,
        }
        budgets = request.app.state.resources.budgets
        holder = f"user:{user.id}"
        context["month"] = (await budgets.describe([holder], owner=int(user.id)))[holder]
        if user.role == "admin":
            context["per_user"] = await _totals("user", since)
            context["per_key"] = await _totals("key", since)
        return page(request, "usage/page.html", context)

    @get("/export.csv", name="usage_csv")
    async def export(
        self,
        request: Request[Any, Any, Any],
        group_by: Annotated[GroupBy, Parameter(description="day, model or key")] = "day",
    ) -> Response[str]:
        user = await current_user(request)
        assert user is not None
        report = await _own(user, group_by)
        who = re.sub(r"[^A-Za-z0-9_.-]", "_", user.username)  # a header-safe file name
        filename = f"usage-{who}-{group_by}-{report.end.isoformat()}.csv"
        return Response(
            as_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )


async def _own(user: User, group_by: GroupBy) -> UsageReport:
    """The signed-in person's usage over the page's days."""
    today = dt.datetime.now(dt.UTC).date()
    start = today - dt.timedelta(days=DAYS - 1)
    return await usage_report(int(user.id), user.username, start, today, group_by)


async def _totals(by: str, since: dt.datetime) -> list[dict[str, Any]]:
    sums: defaultdict[int | None, dict[str, int]] = defaultdict(
        lambda: {"requests": 0, "tokens": 0}
    )
    for total in await daily_totals(by, since=since):  # type: ignore[arg-type]
        sums[total.subject_id]["requests"] += total.requests
        sums[total.subject_id]["tokens"] += total.total_tokens
    ids = [i for i in sums if i is not None]
    names = await (usernames(ids) if by == "user" else key_owner_labels(ids))
    rows = [
        {"name": names.get(i, f"#{i}") if i is not None else "browser", **v}
        for i, v in sums.items()
    ]
    return sorted(rows, key=lambda row: row["tokens"], reverse=True)

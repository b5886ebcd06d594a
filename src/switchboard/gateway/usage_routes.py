"""``GET /v1/usage``: a program reads its owner's usage (admins' keys: anyone's, with ``user=``)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import Parameter

from switchboard.accounts.services import get_user, get_user_by_name
from switchboard.gateway.accounting import Caller
from switchboard.gateway.errors import GatewayError, invalid_request
from switchboard.gateway.routes import SECURITY, error_responses, provide_caller
from switchboard.usage.report import month_start, usage_report
from switchboard.usage.schemas import UsageReport

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Published as a plain string: Litestar would publish `str | None` as `oneOf [string, null]`,
# and a query string cannot send null (absent is how it says "not given").
PLAIN_STRING = {"one_of": None, "type": OpenAPIType.STRING}
DateParam = Annotated[
    str | None,
    Parameter(
        pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
        schema_extra={**PLAIN_STRING, "format": "date"},
        description="A day, `YYYY-MM-DD` (UTC).",
    ),
]


def parse_day(value: str | None, name: str, default: dt.date) -> dt.date:
    if value is None:
        return default
    try:
        if _DATE.fullmatch(value):
            return dt.date.fromisoformat(value)
    except ValueError:
        pass
    raise invalid_request(f"Invalid value for `{name}`: expected a date YYYY-MM-DD.", name,
                          "invalid_value")  # fmt: skip


class UsageApiController(Controller):
    path = "/v1"
    tags = ["Usage"]
    security = SECURITY
    dependencies = {"caller": Provide(provide_caller)}

    @get(
        "/usage",
        operation_id="getUsage",
        summary="Your usage (requests and tokens) per day, model or key",
        description="From `start` (default: the first of this month) to `end` (default: today), "
        "both included, in UTC. Keys of admins may read another person's with `user`.",
        responses=error_responses(400, 401, 403, 404),
    )
    async def usage(
        self,
        caller: NamedDependency[Caller],
        start: DateParam = None,
        end: DateParam = None,
        group_by: Annotated[
            Literal["day", "model", "key"], Parameter(description="How rows are grouped.")
        ] = "day",
        user: Annotated[
            str | None,
            Parameter(
                description="Username (admins' keys only).",
                max_length=64,
                schema_extra=PLAIN_STRING,
            ),
        ] = None,
    ) -> UsageReport:
        today = dt.datetime.now(dt.UTC).date()
        first, last = parse_day(start, "start", month_start(today)), parse_day(end, "end", today)
        me = await get_user(caller.user_id) if caller.user_id is not None else None
        if me is None:
            raise GatewayError(401, "This key's owner no longer exists.", code="invalid_api_key")
        subject = me
        if user is not None and user != me.username:
            if me.role != "admin":
                raise GatewayError(
                    403, "Only an admin's key may read another person's usage.",
                    type="permission_error", code="forbidden", param="user",
                )  # fmt: skip
            found = await get_user_by_name(user)
            if found is None:
                raise GatewayError(404, f"No user named `{user}`.", code="user_not_found",
                                   param="user")  # fmt: skip
            subject = found
        return await usage_report(int(subject.id), subject.username, first, last, group_by)

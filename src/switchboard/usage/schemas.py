"""Wire types of the usage report (``GET /v1/usage``), published in the OpenAPI schema."""

from __future__ import annotations

import datetime as dt

import msgspec


class UsageTotals(msgspec.Struct, kw_only=True):
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cache_hits: int
    """Answered from the response cache."""
    errors: int
    """Ended with a status of 400 or more."""


class UsageBucket(UsageTotals, kw_only=True):
    group: str
    """The day (``YYYY-MM-DD``, UTC), the model, or the key (``sk-sb-abcd…``; ``browser`` for
    the chat)."""
    key_id: int | None = None
    """With ``group_by=key``: the key's id (null for the browser chat)."""


class UsageReport(msgspec.Struct, kw_only=True):
    """One person's usage from ``start`` to ``end`` (both included), grouped."""

    start: dt.date
    end: dt.date
    group_by: str
    user: str
    data: list[UsageBucket]
    total: UsageTotals
    object: str = "usage.report"

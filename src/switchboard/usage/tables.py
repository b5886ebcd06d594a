"""One row per completion request, written in batches off the response path."""

from __future__ import annotations

from piccolo.columns import Boolean, Integer, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class UsageRecord(Table, tablename="usage_records"):
    id: Serial  # Piccolo adds the primary key; declared here for the type checker
    # Plain ids, not foreign keys: usage outlives revoked keys and stays cheap to insert.
    # Composite indexes (key_id, created_at) and (user_id, created_at) come from a migration.
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    key_id = Integer(null=True, default=None)
    user_id = Integer(null=True, default=None)
    source = Varchar(length=8, default="api")
    model = Varchar(length=128)
    prompt_tokens = Integer(default=0)
    completion_tokens = Integer(default=0)
    total_tokens = Integer(default=0)
    latency_ms = Integer(default=0)
    ttft_ms = Integer(null=True, default=None)
    status = Integer(default=200)
    cache_hit = Boolean(default=False)
    stream = Boolean(default=False)
    request_id = Varchar(length=64, default="")

"""API keys: only a hash and a display prefix are stored; the secret is shown once."""

from __future__ import annotations

from piccolo.columns import ForeignKey, Integer, OnDelete, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from switchboard.accounts.tables import User


class ApiKey(Table, tablename="api_keys"):
    id: Serial  # Piccolo adds the primary key; declared here for the type checker
    user = ForeignKey(references=User, on_delete=OnDelete.cascade, index=True)
    name = Varchar(length=100, default="")
    prefix = Varchar(length=24)
    key_hash = Varchar(length=64, unique=True, index=True)
    rpm = Integer(null=True, default=None)
    """Requests per minute; NULL: the owner's default."""
    tpm = Integer(null=True, default=None)
    """Tokens per minute (prompt + completion); NULL: the owner's default."""
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)
    last_used_at = Timestamptz(null=True, default=None)

"""People who use Switchboard."""

from __future__ import annotations

from piccolo.columns import Boolean, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class User(Table, tablename="users"):
    id: Serial  # Piccolo adds the primary key; declared here for the type checker
    username = Varchar(length=64, unique=True, index=True)
    password_hash = Varchar(length=255, default="")
    role = Varchar(length=16, default="member")
    is_active = Boolean(default=True)
    default_rpm = Integer(default=60)
    default_tpm = Integer(default=100_000)
    created_at = Timestamptz(default=TimestamptzNow())


class Session(Table, tablename="sessions"):
    """Server-side sessions of signed-in people (see accounts/sessions.py); the id in the cookie
    is the key. Expired rows are purged on a schedule."""

    key = Varchar(length=128, unique=True, index=True)
    data = Text(default="")
    expires_at = Timestamptz(null=True, default=None, index=True)

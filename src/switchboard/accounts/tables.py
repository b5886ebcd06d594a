"""People who use Switchboard."""

from __future__ import annotations

from piccolo.columns import Boolean, Integer, Serial, Timestamptz, Varchar
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

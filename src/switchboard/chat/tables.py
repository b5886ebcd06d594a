"""Conversations and their messages."""

from __future__ import annotations

from piccolo.columns import (
    Boolean,
    Float,
    ForeignKey,
    Integer,
    OnDelete,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from switchboard.accounts.tables import User


class Project(Table, tablename="projects"):
    """A user's group of conversations, with instructions every conversation in it is given."""

    id: Serial
    user = ForeignKey(references=User, on_delete=OnDelete.cascade, index=True)
    name = Varchar(length=100)
    instructions = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class Conversation(Table, tablename="conversations"):
    id: Serial
    user = ForeignKey(references=User, on_delete=OnDelete.cascade, index=True)
    title = Varchar(length=200, default="New chat")
    system_prompt = Text(default="")
    model = Varchar(length=128, default="")
    temperature = Float(default=0.7)
    max_tokens = Integer(default=512)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow(), index=True)
    pinned = Boolean(default=False)
    archived = Boolean(default=False)
    """Out of the conversation list; search still finds it."""
    project = ForeignKey(references=Project, on_delete=OnDelete.set_null, null=True, index=True)
    """The project it belongs to (its instructions apply), or None."""


class Message(Table, tablename="messages"):
    id: Serial
    conversation = ForeignKey(references=Conversation, on_delete=OnDelete.cascade, index=True)
    role = Varchar(length=16)
    content = Text(default="")
    status = Varchar(length=16, default="complete")
    """streaming (waiting) | generating | stopping | complete | stopped | error"""
    error = Text(default="")
    error_status = Integer(default=0)
    """The HTTP status of the error (503: model down, 429: limited), 0 without one."""
    retry_at = Timestamptz(null=True, default=None)
    """When a refused request may be tried again (from ``Retry-After``)."""
    completion_tokens = Integer(default=0)
    created_at = Timestamptz(default=TimestamptzNow())

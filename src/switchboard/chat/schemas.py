"""The conversations' export format (what an export writes and an import reads)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

import msgspec

from switchboard.chat.services import DEFAULT_TEMPERATURE

FORMAT_VERSION = 2
"""2 added projects (``projects``, and each conversation's ``project``); files of version 1,
without them, import as before."""


class ExportedMessage(msgspec.Struct):
    role: Literal["user", "assistant", "system"]
    content: str
    status: str = "complete"
    created_at: dt.datetime | None = None


class ExportedConversation(msgspec.Struct):
    title: str
    messages: list[ExportedMessage]
    system_prompt: str = ""
    model: str = ""
    temperature: float = DEFAULT_TEMPERATURE
    max_tokens: int = 512
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    project: str | None = None
    """The name of its project (one of ``Export.projects``, or a new one without instructions)."""


class ExportedProject(msgspec.Struct):
    name: str
    instructions: str = ""
    created_at: dt.datetime | None = None


class Export(msgspec.Struct):
    conversations: list[ExportedConversation]
    projects: list[ExportedProject] = msgspec.field(default_factory=list)
    format: Literal["switchboard.conversations"] = "switchboard.conversations"
    version: int = FORMAT_VERSION

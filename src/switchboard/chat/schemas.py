"""The conversations' export format (what an export writes and an import reads)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

import msgspec

from switchboard.chat.services import DEFAULT_TEMPERATURE

FORMAT_VERSION = 1


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


class Export(msgspec.Struct):
    conversations: list[ExportedConversation]
    format: Literal["switchboard.conversations"] = "switchboard.conversations"
    version: int = FORMAT_VERSION

"""Bounds on a conversation import: file size, counts and field lengths (refused, with a message
that says which limit and where), and the conversation settings (clamped into the ranges the
settings form allows).

The limits fit an export this app wrote: titles, system prompts and model names are capped at what
the app itself stores, a message at about what the message form accepts.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from switchboard.chat import services

if TYPE_CHECKING:
    from switchboard.chat.transfer import Export

MIB = 1024 * 1024
MAX_IMPORT_BYTES = 8 * MIB
"""The largest JSON file an import reads."""
MULTIPART_SLACK = 64 * 1024
"""Room for the multipart framing around the file (and the CSRF field) in the request body."""
MAX_IMPORT_CONVERSATIONS = 500
MAX_IMPORT_MESSAGES = 2_000
"""Per conversation."""
MAX_IMPORT_TOTAL_MESSAGES = 50_000
"""Over the whole file (all inserted in one transaction)."""
MAX_MESSAGE_CHARS = 1_000_000
"""About what the message form takes (``SWITCHBOARD_MAX_BODY_BYTES``, 1 MiB by default)."""
INSERT_BATCH = 500
"""Messages per INSERT statement (below SQLite's and PostgreSQL's bound-parameter limits)."""

TOO_LARGE = (
    f"An import file can be at most {MAX_IMPORT_BYTES // MIB} MiB: export fewer conversations "
    "at a time (each conversation has its own JSON export)."
)


def first_problem(export: Export) -> str | None:
    """Why ``export`` cannot be imported (the first limit it exceeds), or None."""
    count = len(export.conversations)
    if count > MAX_IMPORT_CONVERSATIONS:
        return (
            f"At most {MAX_IMPORT_CONVERSATIONS} conversations per import (this file has {count})."
        )
    total = 0
    for number, item in enumerate(export.conversations, start=1):
        where = f"Conversation {number}"
        if len(item.messages) > MAX_IMPORT_MESSAGES:
            return f"{where} has more than {MAX_IMPORT_MESSAGES} messages."
        total += len(item.messages)
        lengths = (
            ("the title", item.title, services.MAX_TITLE_CHARS),
            ("the system prompt", item.system_prompt, services.MAX_SYSTEM_PROMPT_CHARS),
            ("the model name", item.model, services.MAX_MODEL_CHARS),
        )
        for what, text, limit in lengths:
            if len(text) > limit:
                return f"{where}: {what} is longer than {limit} characters."
        for index, message in enumerate(item.messages, start=1):
            if len(message.content) > MAX_MESSAGE_CHARS:
                return f"{where}: message {index} is longer than {MAX_MESSAGE_CHARS} characters."
    if total > MAX_IMPORT_TOTAL_MESSAGES:
        return f"At most {MAX_IMPORT_TOTAL_MESSAGES} messages per import (this file has {total})."
    return None


def clamp_temperature(value: float) -> float:
    low, high = services.TEMPERATURE_RANGE
    if not math.isfinite(value):
        return services.DEFAULT_TEMPERATURE
    return min(max(value, low), high)


def clamp_max_tokens(value: int, max_len: int) -> int:
    """Into 1..``max_len`` (the model's context length), like the settings form."""
    return min(max(value, 1), max_len)

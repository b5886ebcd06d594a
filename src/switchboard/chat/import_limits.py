"""Bounds on a conversation import: file size, counts and field lengths (refused, with a message
that says which limit and where), and the conversation settings (clamped into the ranges the
settings form allows).

The limits fit an export this app wrote: titles, system prompts and model names are capped at what
the app itself stores, a message at about what the message form accepts.
"""

from __future__ import annotations

import datetime as dt
import math

from switchboard.chat import services
from switchboard.chat.schemas import Export

MIB = 1024 * 1024
MAX_IMPORT_BYTES = 8 * MIB
"""The largest JSON file an import reads."""
MULTIPART_SLACK = 64 * 1024
"""Room for the multipart framing around the file (and the CSRF field) in the request body."""
MAX_IMPORT_CONVERSATIONS = 500
MAX_IMPORT_PROJECTS = 500
MAX_PROJECT_NAME_CHARS = 100
"""As projects.MAX_NAME_CHARS (which imports this module)."""
MAX_IMPORT_MESSAGES = 2_000
"""Per conversation."""
MAX_IMPORT_TOTAL_MESSAGES = 50_000
"""Over the whole file (all inserted in one transaction)."""
MAX_MESSAGE_CHARS = 1_000_000
"""About what the message form takes (``SWITCHBOARD_MAX_BODY_BYTES``, 1 MiB by default)."""
INSERT_BATCH = 500
"""Messages per INSERT statement (below SQLite's and PostgreSQL's bound-parameter limits)."""

EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
"""Dates an import may carry: every page can show them in any time zone (the year 1 or 9999
cannot be shifted by a zone's offset; PostgreSQL stores them, then fails to read them back)."""

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
    if problem := _project_problem(export):
        return problem
    total = 0
    for number, item in enumerate(export.conversations, start=1):
        where = f"Conversation {number}"
        if item.project is not None and len(item.project) > MAX_PROJECT_NAME_CHARS:
            return (
                f"{where}: its project's name is longer than {MAX_PROJECT_NAME_CHARS} characters."
            )
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
        for what, when in (
            ("its creation date", item.created_at),
            ("its last change", item.updated_at),
        ):
            if when is not None and (problem := date_problem(when)):
                return f"{where}: {what} {problem}."
        for index, message in enumerate(item.messages, start=1):
            if len(message.content) > MAX_MESSAGE_CHARS:
                return f"{where}: message {index} is longer than {MAX_MESSAGE_CHARS} characters."
            if message.created_at is not None and (problem := date_problem(message.created_at)):
                return f"{where}: the date of message {index} {problem}."
    if total > MAX_IMPORT_TOTAL_MESSAGES:
        return f"At most {MAX_IMPORT_TOTAL_MESSAGES} messages per import (this file has {total})."
    return None


def _project_problem(export: Export) -> str | None:
    count = len(export.projects)
    if count > MAX_IMPORT_PROJECTS:
        return f"At most {MAX_IMPORT_PROJECTS} projects per import (this file has {count})."
    for number, project in enumerate(export.projects, start=1):
        where = f"Project {number}"
        if not " ".join(project.name.replace("\x00", "").split()):
            return f"{where} has no name."
        if len(project.name) > MAX_PROJECT_NAME_CHARS:
            return f"{where}: the name is longer than {MAX_PROJECT_NAME_CHARS} characters."
        if len(project.instructions) > services.MAX_SYSTEM_PROMPT_CHARS:
            return (
                f"{where}: the instructions are longer than {services.MAX_SYSTEM_PROMPT_CHARS} "
                "characters."
            )
        if project.created_at is not None and (problem := date_problem(project.created_at)):
            return f"{where}: its creation date {problem}."
    return None


def as_utc(when: dt.datetime) -> dt.datetime:
    """A date without a zone is read as UTC (as exports write them), not the server's zone."""
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def date_problem(when: dt.datetime) -> str | None:
    """Why ``when`` cannot be imported (outside EARLIEST to LATEST), or None."""
    try:
        inside = EARLIEST <= as_utc(when) <= LATEST
    except OverflowError:
        inside = False
    if inside:
        return None
    return f"{when.isoformat()} is outside {EARLIEST.year} to {LATEST.year}"


def clamp_temperature(value: float) -> float:
    low, high = services.TEMPERATURE_RANGE
    if not math.isfinite(value):
        return services.DEFAULT_TEMPERATURE
    return min(max(value, low), high)


def clamp_max_tokens(value: int, max_len: int) -> int:
    """Into 1..``max_len`` (the model's context length), like the settings form."""
    return min(max(value, 1), max_len)

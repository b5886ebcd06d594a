"""Conversations: listing, search, creation and changes, always scoped to their owner."""

from __future__ import annotations

import datetime as dt
from typing import Any

from piccolo.columns.combination import WhereRaw
from piccolo.custom_types import Combinable

from switchboard.chat.tables import Conversation, Message
from switchboard.db.engine import is_postgres
from switchboard.observability.metrics import CONVERSATIONS_CREATED, MESSAGES_CREATED

PAGE_SIZE = 20
MAX_PAGE = 10_000
"""The last page number the conversation list serves (200,000 conversations in)."""
SEARCH_MAX_CHARS = 200
"""A longer search is cut to this many characters."""
TITLE_LENGTH = 60
# Bounds of a conversation's fields (the columns, the forms and imports keep to them).
MAX_TITLE_CHARS = 200
MAX_SYSTEM_PROMPT_CHARS = 20_000
MAX_MODEL_CHARS = 128
TEMPERATURE_RANGE = (0.0, 2.0)
DEFAULT_TEMPERATURE = 0.7
LIKE_ESCAPE = "!"
MAX_RETRY_AFTER = 31 * 24 * 3600
"""A ``Retry-After`` further out is read as this many seconds (a monthly budget resets)."""
# An assistant message is "streaming" until one request claims it ("generating"); "stopping" is
# asked by the stop button; the rest are final.
LIVE = ("streaming", "generating", "stopping")
FINAL = ("complete", "stopped", "error")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def clean(text: str) -> str:
    """Text as PostgreSQL can store it: without NUL characters (SQLite would keep them)."""
    return text.replace("\x00", "")


def title_from(text: str) -> str:
    words = " ".join(text.split())
    return words if len(words) <= TITLE_LENGTH else words[: TITLE_LENGTH - 1].rstrip() + "…"


def search_text(query: str) -> str:
    return clean(query).strip()[:SEARCH_MAX_CHARS]


async def list_conversations(
    user_id: int, *, query: str = "", page: int = 0, before: int = 0, project: int | None = None
) -> list[dict[str, Any]]:
    """Pinned first, then newest first; ``query`` matches titles and message contents
    (case-insensitive, literally: ``%`` and ``_`` are plain characters), of ``user_id``'s
    conversations only. Archived ones are left out, unless searched for. Without a query, the
    conversations of ``project`` (None: those in no project); a search looks in all of them.
    ``before`` more rows from the page before come first (to know the date group the page
    continues)."""
    select = Conversation.select(
        Conversation.id,
        Conversation.title,
        Conversation.updated_at,
        Conversation.pinned,
        Conversation.archived,
    ).where(Conversation.user == user_id)
    text = search_text(query)
    if text:
        pattern = f"%{like_escape(text)}%"
        in_messages = Message.select(Message.conversation).where(
            (Message.conversation.user == user_id) & _contains(Message.content, pattern)
        )
        select = select.where(
            _contains(Conversation.title, pattern) | Conversation.id.is_in(in_messages)
        )
    else:
        in_project = (
            Conversation.project.is_null() if project is None else Conversation.project == project
        )
        select = select.where(Conversation.archived.eq(False) & in_project)
    page = min(max(page, 0), MAX_PAGE)
    before = min(before, page * PAGE_SIZE)
    rows: list[dict[str, Any]] = (
        await select.order_by(Conversation.pinned, ascending=False)
        .order_by(Conversation.updated_at, ascending=False)
        .order_by(Conversation.id, ascending=False)
        .limit(PAGE_SIZE + 1 + before)
        .offset(page * PAGE_SIZE - before)
    )
    return rows


async def matching_messages(
    user_id: int, conversation_ids: list[int], query: str
) -> dict[int, str]:
    """The first message of each conversation that contains ``query`` (its content)."""
    text = search_text(query)
    if not text or not conversation_ids:
        return {}
    rows = (
        await Message.select(Message.conversation, Message.content)
        .where(
            (Message.conversation.user == user_id)
            & Message.conversation.is_in(conversation_ids)
            & _contains(Message.content, f"%{like_escape(text)}%")
        )
        .order_by(Message.id)
    )
    found: dict[int, str] = {}
    for row in rows:
        found.setdefault(int(row["conversation"]), str(row["content"]))
    return found


def like_escape(text: str) -> str:
    """``text`` as a LIKE pattern that matches only itself (with ``ESCAPE LIKE_ESCAPE``)."""
    for special in (LIKE_ESCAPE, "%", "_"):  # the escape character first
        text = text.replace(special, LIKE_ESCAPE + special)
    return text


def _contains(column: Any, pattern: str) -> WhereRaw:
    """Case-insensitive LIKE with an escape character (Piccolo's like() has no ESCAPE): ILIKE on
    PostgreSQL; SQLite's LIKE already ignores case. The pattern is a bound parameter."""
    operator = "ILIKE" if is_postgres(Conversation._meta.db) else "LIKE"
    name = column._meta.get_full_name(with_alias=False)  # a quoted "table"."column"
    return WhereRaw(f"{name} {operator} {{}} ESCAPE '{LIKE_ESCAPE}'", pattern)


async def owned(conversation_id: int, user_id: int) -> Conversation | None:
    """The conversation if it belongs to ``user_id`` (others' look like missing ones)."""
    return (
        await Conversation.objects()
        .where((Conversation.id == conversation_id) & (Conversation.user == user_id))
        .first()
    )


async def create_conversation(user_id: int, model: str) -> Conversation:
    conversation = Conversation(user=user_id, model=model)
    await conversation.save()
    CONVERSATIONS_CREATED.inc()
    return conversation


async def start_conversation(
    user_id: int, model: str, first_message: str, project: int | None = None
) -> Conversation:
    """A conversation stored together with its first message (titled from it), in one
    transaction: nothing is left of a conversation nobody wrote in. ``project``: one of the
    user's (the caller checked), or None."""
    async with Conversation._meta.db.transaction():  # a write first: SQLite locks at once
        title = title_from(first_message)
        conversation = Conversation(user=user_id, model=model, title=title, project=project)
        await conversation.save()
        await add_message(conversation, "user", first_message)
    CONVERSATIONS_CREATED.inc()
    return conversation


async def messages_of(conversation_id: int) -> list[Message]:
    return (
        await Message.objects().where(Message.conversation == conversation_id).order_by(Message.id)
    )


async def live_answers(
    conversation_id: int | None = None, project_id: int | None = None
) -> list[int]:
    """The ids of the answers still being written, in one conversation or in a project's."""
    where: Combinable = Message.status.is_in(list(LIVE))
    if conversation_id is not None:
        where &= Message.conversation == conversation_id
    if project_id is not None:
        where &= Message.conversation.project == project_id
    rows = await Message.select(Message.id).where(where)
    return [int(row["id"]) for row in rows]


async def add_message(
    conversation: Conversation, role: str, content: str, status: str = "complete"
) -> Message:
    content = clean(content)
    message = Message(conversation=conversation.id, role=role, content=content, status=status)
    await message.save()
    MESSAGES_CREATED.labels(role).inc()
    changes: dict[Any, Any] = {Conversation.updated_at: now()}
    if role == "user" and conversation.title == "New chat":
        changes[Conversation.title] = title_from(content)
        conversation.title = changes[Conversation.title]
    await Conversation.update(changes).where(Conversation.id == conversation.id)
    return message


async def rename(conversation: Conversation, title: str) -> None:
    conversation.title = title_from(clean(title)) or "Untitled"
    await Conversation.update({Conversation.title: conversation.title}).where(
        Conversation.id == conversation.id
    )


async def set_flags(conversation: Conversation, *, pinned: bool, archived: bool) -> None:
    conversation.pinned, conversation.archived = pinned, archived
    await Conversation.update({Conversation.pinned: pinned, Conversation.archived: archived}).where(
        Conversation.id == conversation.id
    )


async def delete(conversation: Conversation) -> None:
    await Conversation.delete().where(Conversation.id == conversation.id)


async def finish_message(
    message_id: int,
    content: str,
    status: str,
    error: str = "",
    tokens: int = 0,
    *,
    error_status: int = 0,
    retry_at: dt.datetime | None = None,
) -> None:
    await Message.update(
        {
            Message.content: clean(content),
            Message.status: status,
            Message.error: clean(error),
            Message.completion_tokens: tokens,
            Message.error_status: error_status,
            Message.retry_at: retry_at,
        }
    ).where(Message.id == message_id)


def retry_at_of(headers: dict[str, str]) -> dt.datetime | None:
    """When ``Retry-After`` (seconds) says a request may be tried again."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), "")
    try:
        seconds = min(max(int(value), 0), MAX_RETRY_AFTER)
    except ValueError:
        return None
    return now() + dt.timedelta(seconds=seconds)


async def claim(message_id: int) -> bool:
    """Take the generation of a waiting reply: one conditional update, so that of two requests
    for the same message (a reload, an EventSource reconnect) exactly one generates."""
    claimed = (
        await Message.update({Message.status: "generating"})
        .where((Message.id == message_id) & (Message.status == "streaming"))
        .returning(Message.id)
    )
    return bool(claimed)


async def request_stop(message_id: int) -> bool:
    """Ask the generating request to stop; a reply nobody generates yet just ends empty."""
    unclaimed = (
        await Message.update({Message.status: "stopped"})
        .where((Message.id == message_id) & (Message.status == "streaming"))
        .returning(Message.id)
    )
    if unclaimed:
        return True
    changed = (
        await Message.update({Message.status: "stopping"})
        .where((Message.id == message_id) & (Message.status == "generating"))
        .returning(Message.id)
    )
    return bool(changed)


async def status_of(message_id: int) -> str | None:
    row = await Message.select(Message.status).where(Message.id == message_id).first()
    return None if row is None else str(row["status"])


async def last_messages(conversation_id: int) -> tuple[Message | None, Message | None]:
    """The last user message and the last assistant message."""
    messages = await messages_of(conversation_id)
    user = next((m for m in reversed(messages) if m.role == "user"), None)
    assistant = next((m for m in reversed(messages) if m.role == "assistant"), None)
    return user, assistant


async def drop_after(conversation_id: int, message_id: int) -> None:
    """Delete the messages that follow ``message_id`` (to answer it again)."""
    await Message.delete().where(
        (Message.conversation == conversation_id) & (Message.id > message_id)
    )


async def replace_content(message_id: int, content: str) -> None:
    await Message.update({Message.content: clean(content)}).where(Message.id == message_id)


async def update_settings(conversation: Conversation, changes: dict[str, Any]) -> None:
    changes = {name: clean(v) if isinstance(v, str) else v for name, v in changes.items()}
    columns = {getattr(Conversation, name): value for name, value in changes.items()}
    await Conversation.update(columns).where(Conversation.id == conversation.id)
    for name, value in changes.items():
        setattr(conversation, name, value)

"""Export conversations as Markdown or JSON, and import conversations (read from a file by
import_formats.py) all at once."""

from __future__ import annotations

from piccolo.engine.sqlite import SQLiteEngine, TransactionType

from switchboard.chat import import_limits, services
from switchboard.chat.schemas import Export, ExportedConversation, ExportedMessage
from switchboard.chat.tables import Conversation, Message

KEPT_STATUSES = ("complete", "stopped", "error")


async def export_one(conversation: Conversation) -> ExportedConversation:
    messages = await services.messages_of(conversation.id)
    return ExportedConversation(
        title=conversation.title,
        system_prompt=conversation.system_prompt,
        model=conversation.model,
        temperature=conversation.temperature,
        max_tokens=conversation.max_tokens,
        created_at=conversation.created_at,
        updated_at=conversation.updated_at,
        messages=[
            ExportedMessage(
                role="user" if m.role == "user" else "assistant",
                content=m.content,
                status=m.status,
                created_at=m.created_at,
            )
            for m in messages
            if m.role in ("user", "assistant") and m.status not in services.LIVE
        ],
    )


async def export_all(user_id: int) -> Export:
    owned = (
        await Conversation.objects().where(Conversation.user == user_id).order_by(Conversation.id)
    )
    return Export(conversations=[await export_one(c) for c in owned])


def as_markdown(exported: ExportedConversation) -> str:
    lines = [f"# {exported.title}", ""]
    if exported.system_prompt:
        lines += [f"> System: {exported.system_prompt}", ""]
    for message in exported.messages:
        who = "You" if message.role == "user" else "Assistant"
        note = " (stopped)" if message.status == "stopped" else ""
        lines += [f"## {who}{note}", "", message.content, ""]
    return "\n".join(lines)


class ImportError_(ValueError):
    """The uploaded file is not an export we can read (the message says why)."""

    status_code = 400


class ImportTooLarge(ImportError_):
    """The file is over the import's size limit."""

    status_code = 413


async def import_all(user_id: int, export: Export, *, max_tokens: int) -> int:
    """Add the conversations to ``user_id``'s, all or none (one transaction); settings are
    clamped into the settings form's ranges (``max_tokens``: the model's context length)."""
    engine = Conversation._meta.db
    # SQLite: take the write lock up front (a deferred transaction could fail to upgrade).
    transaction = (
        engine.transaction(transaction_type=TransactionType.immediate)
        if isinstance(engine, SQLiteEngine)
        else engine.transaction()
    )
    async with transaction:
        for item in export.conversations:
            await _import_one(user_id, item, max_tokens)
    return len(export.conversations)


async def _import_one(user_id: int, item: ExportedConversation, max_tokens: int) -> None:
    conversation = Conversation(
        user=user_id,
        title=services.title_from(services.clean(item.title)) or "Imported",
        system_prompt=services.clean(item.system_prompt),
        model=services.clean(item.model),
        temperature=import_limits.clamp_temperature(item.temperature),
        max_tokens=import_limits.clamp_max_tokens(item.max_tokens, max_tokens),
    )
    # Dated as in the file, so that the list groups it by when it happened, not the import.
    when = item.updated_at or item.created_at
    if when is not None:
        conversation.updated_at = import_limits.as_utc(when)
    if item.created_at is not None:
        conversation.created_at = import_limits.as_utc(item.created_at)
    await conversation.save()
    rows = [
        Message(
            conversation=conversation.id,
            role=m.role,
            content=services.clean(m.content),
            status=m.status if m.status in KEPT_STATUSES else "complete",
        )
        for m in item.messages
    ]
    for row, m in zip(rows, item.messages, strict=True):
        if m.created_at is not None:
            row.created_at = import_limits.as_utc(m.created_at)
    for start in range(0, len(rows), import_limits.INSERT_BATCH):
        await Message.insert(*rows[start : start + import_limits.INSERT_BATCH])

"""Export conversations as Markdown or JSON, and import conversations (read from a file by
import_formats.py) all at once, with their projects: an import reuses a project of the same
name (its instructions stay as they are) and creates the others."""

from __future__ import annotations

from piccolo.engine.sqlite import SQLiteEngine, TransactionType

from switchboard.chat import import_limits, projects, services
from switchboard.chat.schemas import (
    Export,
    ExportedConversation,
    ExportedMessage,
    ExportedProject,
)
from switchboard.chat.tables import Conversation, Message, Project

KEPT_STATUSES = ("complete", "stopped", "error")


async def export_one(
    conversation: Conversation, project_names: dict[int, str] | None = None
) -> ExportedConversation:
    """``project_names``: the owner's projects by id (read here when not given)."""
    messages = await services.messages_of(conversation.id)
    if project_names is None:
        project_names = await projects.names_of(int(conversation.user))
    project = None if conversation.project is None else int(conversation.project)
    return ExportedConversation(
        project=project_names.get(project) if project is not None else None,
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


async def export_conversation(conversation: Conversation) -> Export:
    """One conversation, with its project (if it has one)."""
    exported = await export_one(conversation)
    project = await projects.project_of(conversation)
    return Export(
        conversations=[exported],
        projects=[_exported_project(project)] if project is not None else [],
    )


async def export_all(user_id: int) -> Export:
    owned = (
        await Conversation.objects().where(Conversation.user == user_id).order_by(Conversation.id)
    )
    names = await projects.names_of(user_id)
    return Export(
        conversations=[await export_one(c, names) for c in owned],
        projects=[_exported_project(p) for p in await projects.all_of(user_id)],
    )


def _exported_project(project: Project) -> ExportedProject:
    return ExportedProject(
        name=project.name, instructions=project.instructions, created_at=project.created_at
    )


def as_markdown(exported: ExportedConversation) -> str:
    lines = [f"# {exported.title}", ""]
    if exported.project:
        lines += [f"> Project: {exported.project}", ""]
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
        project_ids = await projects.for_import(
            user_id, export.projects, [c.project for c in export.conversations if c.project]
        )
        for item in export.conversations:
            project = project_ids.get(projects.key_of(item.project)) if item.project else None
            await _import_one(user_id, item, max_tokens, project)
    return len(export.conversations)


async def _import_one(
    user_id: int, item: ExportedConversation, max_tokens: int, project: int | None
) -> None:
    conversation = Conversation(
        user=user_id,
        project=project,
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

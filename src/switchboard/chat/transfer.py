"""Export conversations as Markdown or JSON, and import that JSON back."""

from __future__ import annotations

import datetime as dt
from typing import Literal

import msgspec

from switchboard.chat import services
from switchboard.chat.tables import Conversation, Message

FORMAT_VERSION = 1
MAX_IMPORT_CONVERSATIONS = 10_000
KEPT_STATUSES = ("complete", "stopped", "error")


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
    temperature: float = 0.7
    max_tokens: int = 512
    created_at: dt.datetime | None = None


class Export(msgspec.Struct):
    conversations: list[ExportedConversation]
    format: Literal["switchboard.conversations"] = "switchboard.conversations"
    version: int = FORMAT_VERSION


async def export_one(conversation: Conversation) -> ExportedConversation:
    messages = await services.messages_of(conversation.id)
    return ExportedConversation(
        title=conversation.title,
        system_prompt=conversation.system_prompt,
        model=conversation.model,
        temperature=conversation.temperature,
        max_tokens=conversation.max_tokens,
        created_at=conversation.created_at,
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


def parse_import(raw: bytes) -> Export:
    try:
        parsed = msgspec.json.decode(raw, type=Export)
    except msgspec.ValidationError as exc:
        raise ImportError_(f"That file is not a Switchboard export: {exc}") from None
    except msgspec.DecodeError:
        raise ImportError_("That file is not JSON.") from None
    if len(parsed.conversations) > MAX_IMPORT_CONVERSATIONS:
        raise ImportError_(f"At most {MAX_IMPORT_CONVERSATIONS} conversations per import.")
    return parsed


async def import_all(user_id: int, export: Export) -> int:
    for item in export.conversations:
        conversation = Conversation(
            user=user_id, title=services.title_from(item.title) or "Imported",
            system_prompt=item.system_prompt, model=item.model,
            temperature=min(max(item.temperature, 0.0), 2.0), max_tokens=max(1, item.max_tokens),
        )  # fmt: skip
        await conversation.save()
        if item.messages:
            await Message.insert(
                *(
                    Message(
                        conversation=conversation.id,
                        role=m.role,
                        content=m.content,
                        status=m.status if m.status in KEPT_STATUSES else "complete",
                    )
                    for m in item.messages
                )
            )
    return len(export.conversations)

"""The exports people bring, read into ours: ChatGPT's ``conversations.json`` and Open WebUI's
JSON export (besides Switchboard's own), with a report of what was left out and why.

ChatGPT: a list of conversations, each a ``mapping`` of nodes (``message.author.role``,
``message.content.parts``, ``create_time``) linked by ``parent``/``children``; the conversation
shown is the branch from the root to ``current_node`` (else the latest child at each step).
Open WebUI: a list of chats, each ``{"title", "chat": {"messages": [{role, content,
timestamp}]}}``. The same caps apply to every format (import_limits.py); these readers only
turn what they understand into our shape and count the rest.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec

from switchboard.chat import import_limits
from switchboard.chat.schemas import Export, ExportedConversation, ExportedMessage
from switchboard.chat.transfer import ImportError_, ImportTooLarge

KEPT_ROLES = ("user", "assistant")


@dataclass
class ImportReport:
    """What an import brought in and what it left out (reason → how many)."""

    source: str
    conversations: int = 0
    messages: int = 0
    skipped_conversations: Counter[str] = field(default_factory=Counter)
    skipped_messages: Counter[str] = field(default_factory=Counter)
    attachments: int = 0
    """Images and files inside messages (only their text is imported)."""

    def lines(self) -> list[str]:
        """The skipped items, one sentence each, most frequent first."""
        found = [
            *(
                f"{n} conversation{'s' * (n != 1)} skipped: {why}."
                for why, n in self.skipped_conversations.most_common()
            ),
            *(
                f"{n} message{'s' * (n != 1)} skipped: {why}."
                for why, n in self.skipped_messages.most_common()
            ),
        ]
        if self.attachments:
            found.append(
                f"{self.attachments} attachment{'s' * (self.attachments != 1)} "
                "(images, files) left out: only text is imported."
            )
        return found


def detect(data: Any) -> str | None:
    """``switchboard``, ``chatgpt``, ``openwebui`` or None (not an export we know)."""
    if isinstance(data, dict) and data.get("format") == "switchboard.conversations":
        return "switchboard"
    items = data if isinstance(data, list) else None
    if items is None:
        return None
    first = next((item for item in items if isinstance(item, dict)), None)
    if first is None:
        return "chatgpt" if not items else None
    if isinstance(first.get("mapping"), dict):
        return "chatgpt"
    if isinstance(first.get("chat"), dict):
        return "openwebui"
    return None


def _time(value: Any) -> dt.datetime | None:
    """A Unix time in seconds (or milliseconds, as some Open WebUI versions write); None for
    one outside the dates the workspace shows (import_limits.EARLIEST to LATEST)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = value / 1000 if value > 1e11 else value
    try:
        when = dt.datetime.fromtimestamp(seconds, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return when if import_limits.date_problem(when) is None else None


def _title(value: Any, fallback: str) -> str:
    return value.strip() if isinstance(value, str) and value.strip() else fallback


def _branch(mapping: dict[str, Any], current: Any) -> list[dict[str, Any]]:
    """The nodes of the conversation shown, root first (cycles and dangling links end it)."""
    nodes: list[dict[str, Any]] = []
    seen: set[str] = set()
    node_id = current if isinstance(current, str) and current in mapping else None
    if node_id is not None:  # back from the current node to the root
        while isinstance(node_id, str) and node_id in mapping and node_id not in seen:
            seen.add(node_id)
            nodes.append(mapping[node_id])
            node_id = mapping[node_id].get("parent")
        return [n for n in reversed(nodes) if isinstance(n, dict)]
    roots = [k for k, n in mapping.items() if isinstance(n, dict) and not n.get("parent")]
    node_id = roots[0] if roots else None
    while isinstance(node_id, str) and node_id in mapping and node_id not in seen:
        seen.add(node_id)
        node = mapping[node_id]
        if not isinstance(node, dict):
            break
        nodes.append(node)
        children = node.get("children")
        node_id = children[-1] if isinstance(children, list) and children else None
    return nodes


def _chatgpt_text(message: dict[str, Any], report: ImportReport) -> str:
    content = message.get("content")
    if not isinstance(content, dict):
        return ""
    if isinstance(content.get("text"), str):  # "code", "execution_output" and the like
        return str(content["text"])
    parts = content.get("parts")
    if not isinstance(parts, list):
        return ""
    texts = [p for p in parts if isinstance(p, str)]
    if len(texts) < len(parts):
        report.attachments += len(parts) - len(texts)
    return "\n".join(texts)


def _from_chatgpt(items: list[Any], report: ImportReport) -> list[ExportedConversation]:
    converted: list[ExportedConversation] = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("mapping"), dict):
            report.skipped_conversations["not a ChatGPT conversation"] += 1
            continue
        messages: list[ExportedMessage] = []
        for node in _branch(item["mapping"], item.get("current_node")):
            message = node.get("message")
            if not isinstance(message, dict):
                continue  # the root: no message
            author = message.get("author")
            role = author.get("role") if isinstance(author, dict) else None
            metadata = message.get("metadata")
            if isinstance(metadata, dict) and metadata.get("is_visually_hidden_from_conversation"):
                continue  # ChatGPT's own hidden context, never shown to the person
            text = _chatgpt_text(message, report)
            if role not in KEPT_ROLES:
                if text.strip():
                    report.skipped_messages[f"{role or 'unknown'} messages (tools, system)"] += 1
                continue
            if not text.strip():
                report.skipped_messages["empty messages"] += 1
                continue
            when = _time(message.get("create_time"))
            messages.append(ExportedMessage(role=role, content=text, created_at=when))
        converted.append(_conversation(item, number, messages, report))
    return converted


def _from_openwebui(items: list[Any], report: ImportReport) -> list[ExportedConversation]:
    converted: list[ExportedConversation] = []
    for number, item in enumerate(items, start=1):
        chat = item.get("chat") if isinstance(item, dict) else None
        if not isinstance(chat, dict) or not isinstance(chat.get("messages"), list):
            report.skipped_conversations["not an Open WebUI chat"] += 1
            continue
        messages: list[ExportedMessage] = []
        for message in chat["messages"]:
            role = message.get("role") if isinstance(message, dict) else None
            content = message.get("content") if isinstance(message, dict) else None
            if not isinstance(content, str):
                report.skipped_messages["messages without text content"] += 1
                continue
            if role not in KEPT_ROLES:
                report.skipped_messages[f"{role or 'unknown'} messages (tools, system)"] += 1
                continue
            if not content.strip():
                report.skipped_messages["empty messages"] += 1
                continue
            assert isinstance(message, dict)
            when = _time(message.get("timestamp"))
            messages.append(ExportedMessage(role=role, content=content, created_at=when))
        title = item.get("title") or chat.get("title")
        converted.append(_conversation({**item, "title": title}, number, messages, report))
    return converted


def _conversation(
    item: dict[str, Any], number: int, messages: list[ExportedMessage], report: ImportReport
) -> ExportedConversation:
    created = _time(item.get("create_time") or item.get("created_at"))
    updated = _time(item.get("update_time") or item.get("updated_at"))
    return ExportedConversation(
        title=_title(item.get("title"), f"Imported conversation {number}"),
        messages=messages,
        created_at=created,
        updated_at=updated or created,
    )


def convert(data: Any, source: str) -> tuple[Export, ImportReport]:
    """ChatGPT's or Open WebUI's export as ours; conversations left without a message are
    dropped (and reported)."""
    report = ImportReport(source=source)
    readers = {"chatgpt": _from_chatgpt, "openwebui": _from_openwebui}
    conversations = readers[source](data, report)
    kept = [c for c in conversations if c.messages]
    if len(kept) < len(conversations):
        report.skipped_conversations["no text messages"] += len(conversations) - len(kept)
    return Export(conversations=kept), report


SOURCE_NAMES = {"switchboard": "Switchboard", "chatgpt": "ChatGPT", "openwebui": "Open WebUI"}
UNKNOWN = (
    "That file is not an export we can read: a Switchboard JSON export, ChatGPT's "
    "conversations.json or an Open WebUI JSON export."
)


UTF8_BOM = b"\xef\xbb\xbf"
TOO_DEEP = "That file nests too deeply to be an export (JSON lists and objects inside each other)."


def parse_import(raw: bytes) -> tuple[Export, ImportReport]:
    """The conversations in ``raw`` (any format above), within the import limits (else
    ImportError_ says which), and what was left out."""
    if len(raw) > import_limits.MAX_IMPORT_BYTES:
        raise ImportTooLarge(import_limits.TOO_LARGE)
    try:  # checked first: msgspec reports bad UTF-8 only where a string holds it, untyped
        text = raw.removeprefix(UTF8_BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ImportError_(
            f"That file is not UTF-8 text (byte {exc.start}): exports are UTF-8 JSON."
        ) from None
    try:
        data = msgspec.json.decode(text)
    except msgspec.DecodeError:
        raise ImportError_("That file is not JSON.") from None
    except RecursionError:
        raise ImportError_(TOO_DEEP) from None
    source = detect(data)
    if source is None:
        raise ImportError_(UNKNOWN)
    if source == "switchboard":
        try:
            export = msgspec.json.decode(text, type=Export)  # typed: its own dates and errors
        except msgspec.ValidationError as exc:
            raise ImportError_(f"That file is not a Switchboard export: {exc}") from None
        report = ImportReport(source=source)
    else:
        export, report = convert(data, source)
    problem = import_limits.first_problem(export)
    if problem:
        raise ImportError_(problem)
    report.conversations = len(export.conversations)
    report.messages = sum(len(c.messages) for c in export.conversations)
    return export, report

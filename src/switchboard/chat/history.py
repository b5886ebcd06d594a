"""The conversation list as the sidebar shows it: pinned first, then grouped by date (today,
yesterday, previous 7 days, older), and for a search the passage of the message that matched."""

from __future__ import annotations

import datetime as dt
from typing import Any

from switchboard.chat import services

SNIPPET_CONTEXT = 40
"""Characters of the matching message shown on each side of the match."""
PINNED = "Pinned"


def group_of(row: dict[str, Any], today: dt.date) -> str:
    if row.get("pinned"):
        return PINNED
    updated = row["updated_at"]
    day = updated.astimezone(dt.UTC).date() if isinstance(updated, dt.datetime) else today
    age = (today - day).days
    if age <= 0:
        return "Today"
    if age == 1:
        return "Yesterday"
    if age <= 7:
        return "Previous 7 days"
    return "Older"


def snippet(content: str, query: str) -> dict[str, str] | None:
    """The text around the first match of ``query`` in ``content`` (case-insensitive), in three
    parts (before, match, after) for the template to escape and mark."""
    text = " ".join(content.split())
    needle = " ".join(query.split())
    at = text.casefold().find(needle.casefold()) if needle else -1
    if at < 0:
        return None
    start, end = max(0, at - SNIPPET_CONTEXT), min(len(text), at + len(needle) + SNIPPET_CONTEXT)
    return {
        "before": ("…" if start else "") + text[start:at],
        "match": text[at : at + len(needle)],
        "after": text[at + len(needle) : end] + ("…" if end < len(text) else ""),
    }


async def listing(
    user_id: int,
    *,
    query: str = "",
    page: int = 0,
    today: dt.date | None = None,
    project: int | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """One page of the sidebar (or of ``project``'s list): its rows (each with ``group``,
    ``heading`` when a new group starts, ``snippet`` for a search) and whether more follow."""
    today = today or services.now().date()
    before = 1 if page > 0 else 0  # the last row of the page before: is its group continued?
    rows = await services.list_conversations(
        user_id, query=query, page=page, before=before, project=project
    )
    previous = group_of(rows[0], today) if before and rows else None
    rows = rows[before:]
    more = len(rows) > services.PAGE_SIZE
    rows = rows[: services.PAGE_SIZE]
    text = services.search_text(query)
    found = await services.matching_messages(user_id, [int(r["id"]) for r in rows], text)
    for row in rows:
        row["group"] = group_of(row, today)
        row["heading"] = row["group"] != previous
        previous = row["group"]
        row["snippet"] = snippet(found[row["id"]], text) if row["id"] in found else None
    return rows, more

"""Usage rows as the database stores them: every value made storable before it is queued.

PostgreSQL refuses a NUL character in text, a lone surrogate, a string longer than its column
or an integer past 2^31; SQLite refuses integers past 2^63. A request can carry any of these (a
``model`` is the caller's text, token counts are the model server's), and one refused row used
to fail its whole batch on every retry. ``storable`` cleans text (NUL → U+FFFD, unencodable
characters replaced, cut to the column) and clamps counts to the column range; what it had to
change is counted in ``switchboard_usage_clamped_total`` and logged with the request id.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from concurrent.futures import Executor
from dataclasses import dataclass

from switchboard.db.bulk import bindable, insert_many
from switchboard.observability.metrics import USAGE_CLAMPED
from switchboard.usage.tables import UsageRecord

log = logging.getLogger(__name__)

INT_MAX = 2**31 - 1
"""The range of the table's ``Integer`` columns (PostgreSQL's ``integer``)."""
TEXT_LENGTHS = {"model": 128, "source": 8, "request_id": 64}
"""Each text column's ``Varchar`` length (usage/tables.py)."""
COUNTS = ("prompt_tokens", "completion_tokens", "latency_ms", "ttft_ms", "status")


@dataclass(frozen=True, slots=True)
class UsageEvent:
    model: str
    user_id: int | None
    key_id: int | None
    source: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int
    ttft_ms: int | None
    status: int
    cache_hit: bool
    stream: bool
    request_id: str
    at: dt.datetime


def storable_text(value: str, length: int) -> str:
    """``value`` as every supported database stores it: no NUL, valid UTF-8, at most
    ``length`` characters."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    if not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")  # lone surrogates → "?"
    return value[:length]


def storable_count(value: int) -> int:
    return min(max(value, 0), INT_MAX)


def storable(event: UsageEvent) -> UsageEvent:
    """The event with every value within what its column holds (the same event if it was)."""
    changes: dict[str, object] = {}
    for name, length in TEXT_LENGTHS.items():
        text: str = getattr(event, name)
        if len(text) > length or not text.isascii() or "\x00" in text:
            cleaned = storable_text(text, length)
            if cleaned != text:
                changes[name] = cleaned
    for name in COUNTS:
        count: int | None = getattr(event, name)
        if count is not None and not 0 <= count <= INT_MAX:
            changes[name] = storable_count(count)
    total = event.prompt_tokens + event.completion_tokens
    if not changes and total <= INT_MAX:
        return event
    USAGE_CLAMPED.inc()
    log.warning(
        "usage row made storable: values cleaned or clamped",
        extra={"request_id": event.request_id, "fields": sorted(changes)},
    )
    return dataclasses.replace(event, **changes)  # type: ignore[arg-type]


COLUMNS = (
    "created_at",
    "key_id",
    "user_id",
    "source",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "latency_ms",
    "ttft_ms",
    "status",
    "cache_hit",
    "stream",
    "request_id",
)


def values(event: UsageEvent) -> tuple[object, ...]:
    total = storable_count(event.prompt_tokens + event.completion_tokens)
    return (
        event.at,
        event.key_id,
        event.user_id,
        event.source,
        event.model,
        event.prompt_tokens,
        event.completion_tokens,
        total,
        event.latency_ms,
        event.ttft_ms,
        event.status,
        event.cache_hit,
        event.stream,
        event.request_id,
    )


ROWS_PER_STATEMENT = 1000
"""The most rows one insert takes (a batch of the writer)."""


@dataclass(frozen=True, slots=True)
class PendingRow:
    """A recorded event and the values its insert binds, made when it is recorded: a few
    microseconds on each request rather than a burst on the event loop at every flush."""

    event: UsageEvent
    values: tuple[object, ...]


def pending(event: UsageEvent) -> PendingRow:
    """``event`` made storable, with its values as the database's bulk insert binds them."""
    kept = storable(event)
    return PendingRow(kept, bindable(UsageRecord._meta.db, values(kept)))


async def insert_rows(rows: list[PendingRow], thread: Executor | None = None) -> None:
    """One atomic bulk insert (db/bulk.py): all rows are stored, or none; SQLite's on
    ``thread``."""
    assert len(rows) <= ROWS_PER_STATEMENT
    stored = [row.values for row in rows]
    await insert_many(UsageRecord._meta.db, "usage_records", COLUMNS, stored, thread)

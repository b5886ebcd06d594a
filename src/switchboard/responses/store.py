"""Stored responses: kept, read, chained and deleted by their owner only."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import msgspec

from switchboard.responses.tables import StoredResponse

ITEM_LOOKBACK = 100
"""How many of an owner's most recent stored responses an ``item_reference`` is looked for in."""


@dataclass(frozen=True)
class Stored:
    response_id: str
    input_items: list[Any]
    response: dict[str, Any]


def _json(value: Any) -> Any:
    """A JSON column's value (Piccolo returns it as text on both databases)."""
    return msgspec.json.decode(value) if isinstance(value, str | bytes) else value


class ResponseStore:
    async def save(
        self,
        response: dict[str, Any],
        input_items: list[Any],
        user_id: int,
        key_id: int | None,
    ) -> None:
        response_id = str(response.get("id") or "")
        if not response_id:
            return  # nothing to find it by
        await StoredResponse.insert(
            StoredResponse(
                response_id=response_id[:64],
                user_id=user_id,
                key_id=key_id,
                model=str(response.get("model") or "")[:128],
                input_items=msgspec.json.encode(input_items).decode(),
                response=msgspec.json.encode(response).decode(),
            )
        )

    async def get(self, response_id: str, user_id: int) -> Stored | None:
        """The owner's stored response (None for anybody else: an unknown id to them)."""
        if "\x00" in response_id or len(response_id) > 64:
            return None
        row = await (
            StoredResponse.select(StoredResponse.input_items, StoredResponse.response)
            .where(
                (StoredResponse.response_id == response_id) & (StoredResponse.user_id == user_id)
            )
            .first()
        )
        if row is None:
            return None
        return Stored(response_id, _json(row["input_items"]), _json(row["response"]))

    async def items(self, ids: set[str], user_id: int) -> dict[str, Any]:
        """The owner's stored items (inputs and outputs) with these ids, looked for in their
        ``ITEM_LOOKBACK`` most recent responses; an id not found is left out."""
        found: dict[str, Any] = {}
        rows = (
            await StoredResponse.select(StoredResponse.input_items, StoredResponse.response)
            .where(StoredResponse.user_id == user_id)
            .order_by(StoredResponse.id, ascending=False)
            .limit(ITEM_LOOKBACK)
        )
        for row in rows:
            output = _json(row["response"]).get("output", [])
            for item in [*output, *_json(row["input_items"])]:
                key = item.get("id") if isinstance(item, dict) else None
                if key in ids and key not in found:
                    found[key] = item
            if len(found) == len(ids):
                break
        return found

    async def delete(self, response_id: str, user_id: int) -> bool:
        if "\x00" in response_id or len(response_id) > 64:
            return False
        gone = (
            await StoredResponse.delete()
            .where(
                (StoredResponse.response_id == response_id) & (StoredResponse.user_id == user_id)
            )
            .returning(StoredResponse.id)
        )
        return bool(gone)

    async def prune(self, before: dt.datetime) -> int:
        """Forget responses stored before ``before`` (retention); how many."""
        gone = (
            await StoredResponse.delete()
            .where(StoredResponse.created_at < before)
            .returning(StoredResponse.id)
        )
        return len(gone)

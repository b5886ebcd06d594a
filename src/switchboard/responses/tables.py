"""Stored responses (the Responses API's ``store``)."""

from __future__ import annotations

from piccolo.columns import JSON, Integer, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class StoredResponse(Table, tablename="stored_responses"):
    id: Serial
    response_id = Varchar(length=64, unique=True, index=True)
    """The response's own id (``resp_...``), as the model server named it."""
    user_id = Integer(index=True)
    """The owner: the key's user. Nobody else reads, chains or deletes it."""
    key_id = Integer(null=True, default=None)
    model = Varchar(length=128, default="")
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    input_items = JSON(default="[]")
    """Every input item the response answered: earlier turns of the chain included."""
    response = JSON(default="{}")
    """The response object, as the caller got it."""

"""Creating a response: the chain expanded from the store, the answer relayed by the gateway,
then kept (``store``) for its owner.

vLLM's own store lives in one replica's memory (and is off by default), so the gateway keeps
responses itself: ``previous_response_id`` is answered here by putting the stored turns back in
front of the new input (the earlier inputs, then the earlier outputs, as OpenAI chains them;
instructions are not carried over), and the model server sees a self-contained request. Any
gateway replica and any vLLM replica can serve the next turn.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from switchboard.db.engine import UNAVAILABLE as DATABASE_UNAVAILABLE
from switchboard.gateway.accounting import Caller
from switchboard.gateway.cache import ALWAYS, CachePolicy
from switchboard.gateway.errors import GatewayError
from switchboard.gateway.parsing import ParsedRequest
from switchboard.gateway.responses_protocol import ResponsesRequest
from switchboard.gateway.service import Completion, GatewayService
from switchboard.responses.store import ResponseStore, Stored

log = logging.getLogger(__name__)


def as_items(value: Any) -> list[Any]:
    """The ``input`` as a list of items (a text is one user message)."""
    if isinstance(value, list):
        return list(value)
    if isinstance(value, str) and value:
        return [{"type": "message", "role": "user", "content": value}]
    return []


def _reference(item: Any) -> str | None:
    """The id an ``item_reference`` names (None for any other item)."""
    if isinstance(item, dict) and item.get("type") == "item_reference":
        return str(item.get("id"))
    return None


def not_found(response_id: str, param: str | None = None) -> GatewayError:
    what = "Previous response" if param else "Response"
    return GatewayError(
        404, f"{what} with id '{response_id}' not found.", param=param, code="not_found"
    )


def _response_of(answer: bytes) -> dict[str, Any] | None:
    """The response object in a JSON answer, or in a stream's terminal event."""
    try:
        decoded = msgspec.json.decode(answer)
    except msgspec.DecodeError:
        return None
    if not isinstance(decoded, dict):
        return None
    inner = decoded.get("response")
    if str(decoded.get("type", "")).startswith("response.") and isinstance(inner, dict):
        return inner
    return decoded


class ResponsesService:
    def __init__(self, gateway: GatewayService, store: ResponseStore) -> None:
        self.gateway = gateway
        self.store = store

    async def create(
        self, parsed: ParsedRequest, caller: Caller, cache_policy: CachePolicy = ALWAYS
    ) -> Completion:
        request = parsed.request
        assert isinstance(request, ResponsesRequest)
        items = as_items(parsed.body.get("input"))
        body = {key: value for key, value in parsed.body.items() if key != "previous_response_id"}
        previous_id = request.previous_response_id
        chain: list[Any] = []
        if previous_id is not None:
            previous = await self.get(previous_id, caller, param="previous_response_id")
            chain = [*previous.input_items, *previous.response.get("output", [])]
        referenced = any(_reference(item) is not None for item in items)
        if referenced:
            items = await self.resolve(items, chain, caller)
        if chain or referenced:  # the model server gets a self-contained request
            items = [*chain, *items]
            body["input"] = items
        owner = caller.user_id

        async def keep(answer: bytes) -> None:
            response = _response_of(answer)
            if response is None or owner is None:
                return
            response.update(previous_response_id=previous_id, store=True)
            try:
                await self.store.save(response, items, owner, caller.key_id)
            except DATABASE_UNAVAILABLE:
                log.warning(
                    "response not stored: the database is unavailable",
                    extra={"request_id": caller.request_id},
                )

        completion = await self.gateway.complete(
            ParsedRequest("responses", request, body),
            caller,
            cache_policy=cache_policy,
            on_answer=keep if request.store else None,
        )
        if completion.body is not None:  # as OpenAI answers: the chain and the store named
            response = _response_of(completion.body)
            if response is not None:
                response.update(previous_response_id=previous_id, store=request.store)
                completion.body = msgspec.json.encode(response)
        return completion

    async def resolve(self, items: list[Any], chain: list[Any], caller: Caller) -> list[Any]:
        """``items`` with each ``item_reference`` replaced by the item it names: one of the
        chain's (``previous_response_id``) or given earlier, else one of the owner's stored
        responses; 404 for an id found in none (as for a response id: nobody else's items are
        found)."""
        known = [item for item in (*chain, *items) if isinstance(item, dict)]
        given = {item["id"]: item for item in known if "id" in item and _reference(item) is None}
        wanted = {ref for item in items if (ref := _reference(item)) and ref not in given}
        if wanted and caller.user_id is not None:
            given.update(await self.store.items(wanted, caller.user_id))
        resolved = []
        for index, item in enumerate(items):
            ref = _reference(item)
            if ref is not None and ref not in given:
                raise GatewayError(404, f"Item with id '{ref}' not found.",
                                   param=f"input[{index}].id", code="not_found")  # fmt: skip
            resolved.append(item if ref is None else given[ref])
        return resolved

    async def get(self, response_id: str, caller: Caller, param: str | None = None) -> Stored:
        stored = None
        if caller.user_id is not None:
            stored = await self.store.get(response_id, caller.user_id)
        if stored is None:
            raise not_found(response_id, param)
        return stored

    async def delete(self, response_id: str, caller: Caller) -> None:
        if caller.user_id is None or not await self.store.delete(response_id, caller.user_id):
            raise not_found(response_id)

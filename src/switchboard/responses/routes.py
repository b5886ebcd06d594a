"""``/v1/responses``: create (JSON or named server-sent events), retrieve, delete, input items."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Controller, HttpMethod, Request, Response, delete, get, post, route
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath

from switchboard.gateway.accounting import Caller
from switchboard.gateway.auth import authenticate
from switchboard.gateway.cache import CachePolicy
from switchboard.gateway.chunks import Chunk, StreamFailed, StreamItem
from switchboard.gateway.event_stream import event_stream
from switchboard.gateway.parsing import parse_request
from switchboard.gateway.responses_protocol import ResponsesRequest
from switchboard.gateway.routes import (
    COMPLETION_ERRORS,
    SECURITY,
    completion_operation,
    error_responses,
)
from switchboard.gateway.sse import frame
from switchboard.responses.service import ResponsesService
from switchboard.web.disconnect import until_disconnect


@dataclass(frozen=True, slots=True)
class ResponsesCall:
    caller: Caller
    service: ResponsesService


async def provide_responses_call(request: Request[Any, Any, Any], state: State) -> ResponsesCall:
    resources = state.resources  # opened by the lifespan
    return ResponsesCall(await authenticate(request, resources.keys), resources.responses)


def sse_event(item: StreamItem) -> bytes:
    """One item as the Responses API streams it: named events; a failure as an ``error``
    event (the stream's last); nothing more at the end (no ``[DONE]``)."""
    if isinstance(item, Chunk):
        return frame(item.data, item.event)
    if isinstance(item, StreamFailed):
        error = item.error
        payload = {
            "type": "error",
            "code": error.code,
            "message": error.message,
            "param": error.param,
        }
        return frame(msgspec.json.encode(payload), b"error")
    return b""


class ResponseDeleted(msgspec.Struct):
    id: str
    object: str = "response"
    deleted: bool = True


class InputItems(msgspec.Struct):
    data: list[Any]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False
    object: str = "list"


class ResponsesController(Controller):
    """OpenAI's Responses API, relayed to vLLM; stored responses kept by the gateway."""

    path = "/v1/responses"
    tags = ["OpenAI-compatible API"]
    security = SECURITY
    dependencies = {"call": Provide(provide_responses_call)}

    @post(
        "/",
        operation_id="createResponse",
        summary="Create a response (set `stream: true` for named server-sent events)",
        status_code=200,
        responses=COMPLETION_ERRORS,
        operation_class=completion_operation(ResponsesRequest),
    )
    async def create(
        self, request: Request[Any, Any, Any], call: NamedDependency[ResponsesCall]
    ) -> Response[Any]:
        parsed = parse_request("responses", await request.body())
        request.scope["state"]["model"] = parsed.request.model
        policy = CachePolicy.from_header(request.headers.get("cache-control"))
        if parsed.request.stream:
            completion = await call.service.create(parsed, call.caller, policy)

            assert completion.events is not None
            return event_stream(completion.events, sse_event, completion.headers)
        completion = await until_disconnect(
            request.receive, call.service.create(parsed, call.caller, policy)
        )
        return Response(
            content=completion.body or b"",
            media_type="application/json",
            headers=completion.headers,
        )

    @get(
        "/{response_id:str}",
        operation_id="getResponse",
        summary="A stored response (its owner's only)",
        responses=error_responses(401, 404),
    )
    async def retrieve(
        self, response_id: FromPath[str], call: NamedDependency[ResponsesCall]
    ) -> Response[Any]:
        stored = await call.service.get(response_id, call.caller)
        return Response(content=msgspec.json.encode(stored.response), media_type="application/json")

    @delete(
        "/{response_id:str}",
        operation_id="deleteResponse",
        summary="Delete a stored response",
        status_code=200,
        responses=error_responses(401, 404),
    )
    async def remove(
        self, response_id: FromPath[str], call: NamedDependency[ResponsesCall]
    ) -> ResponseDeleted:
        await call.service.delete(response_id, call.caller)
        return ResponseDeleted(id=response_id)

    @route(
        "/{response_id:str}",
        http_method=HttpMethod.OPTIONS,
        include_in_schema=False,
        status_code=204,
    )
    async def options(self) -> Response[None]:
        """Litestar 2 builds a path's automatic OPTIONS answer from the first handler it
        registers, so it would leave out GET here (litestar-org/litestar#4169, fixed in v3)."""
        return Response(None, status_code=204, headers={"Allow": "DELETE, GET, OPTIONS"})

    @get(
        "/{response_id:str}/input_items",
        operation_id="listInputItems",
        summary="The input items a stored response answered (earlier turns included)",
        responses=error_responses(401, 404),
    )
    async def input_items(
        self, response_id: FromPath[str], call: NamedDependency[ResponsesCall]
    ) -> InputItems:
        stored = await call.service.get(response_id, call.caller)
        ids = [item.get("id") for item in stored.input_items if isinstance(item, dict)]
        return InputItems(stored.input_items, ids[0] if ids else None, ids[-1] if ids else None)

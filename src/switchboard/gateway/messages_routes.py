"""``/v1/messages`` and ``/v1/messages/count_tokens``: Anthropic's Messages API, for Anthropic's
SDKs and the coding tools built on them. Keys come as ``x-api-key`` or Bearer; every error is in
Anthropic's shape (``{"type": "error", "error": {...}}``), in a stream as an ``error`` event."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from litestar import Controller, MediaType, Request, Response, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec

from switchboard.gateway.accounting import Caller
from switchboard.gateway.answers import AnthropicErrorResponse
from switchboard.gateway.auth import authenticate
from switchboard.gateway.chunks import Chunk, StreamFailed, StreamItem
from switchboard.gateway.errors import as_gateway_error, invalid_request, upstream_error
from switchboard.gateway.event_stream import event_stream
from switchboard.gateway.messages_protocol import CountedTokens, CountTokensRequest, MessagesRequest
from switchboard.gateway.messages_protocol import check_supported as check_messages
from switchboard.gateway.parsing import decode_body, parse_request
from switchboard.gateway.responses_protocol import Unsupported
from switchboard.gateway.routes import (
    completion_operation,
    error_responses,
)
from switchboard.gateway.service import GatewayService
from switchboard.gateway.sse import frame
from switchboard.gateway.upstream import as_gateway_error as upstream_failure
from switchboard.web.disconnect import until_disconnect
from switchboard.web.request_id import request_id_of

CREATE_ERRORS = (400, 401, 404, 413, 429, 502, 503, 504)
COUNT_ERRORS = (400, 401, 404, 413, 429, 502, 503, 504)


@dataclass(frozen=True, slots=True)
class MessagesCall:
    caller: Caller
    gateway: GatewayService


async def provide_messages_call(request: Request[Any, Any, Any], state: State) -> MessagesCall:
    resources = state.resources  # opened by the lifespan
    caller = await authenticate(request, resources.keys, x_api_key=True)
    return MessagesCall(caller, resources.gateway)


def anthropic_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    error = as_gateway_error(exc)
    return Response(content=error.to_anthropic_json(request_id_of(request.scope)),
                    status_code=error.status, media_type=MediaType.JSON,
                    headers=dict(error.headers))  # fmt: skip


def sse_event(item: StreamItem) -> bytes:
    if isinstance(item, Chunk):
        return frame(item.data, item.event)
    if isinstance(item, StreamFailed):
        return frame(item.error.to_anthropic_json(), b"error")
    return b""  # message_stop already went out


class MessagesController(Controller):
    """Anthropic's Messages API, relayed to vLLM's."""

    path = "/v1/messages"
    tags = ["Anthropic-compatible API"]
    security = [{"BearerAuth": []}]
    dependencies = {"call": Provide(provide_messages_call)}
    exception_handlers = {Exception: anthropic_error}

    @post(
        "/",
        operation_id="createMessage",
        status_code=200,
        responses=error_responses(*CREATE_ERRORS, shape=AnthropicErrorResponse),
        summary="Create a message (Anthropic's API; `stream: true` for its named events)",
        operation_class=completion_operation(MessagesRequest),
    )
    async def create(
        self, request: Request[Any, Any, Any], call: NamedDependency[MessagesCall]
    ) -> Response[Any]:
        parsed = parse_request("messages", await request.body())
        request.scope["state"]["model"] = parsed.request.model
        if parsed.request.stream:
            completion = await call.gateway.complete(parsed, call.caller)

            assert completion.events is not None
            return event_stream(completion.events, sse_event, completion.headers)
        completion = await until_disconnect(
            request.receive, call.gateway.complete(parsed, call.caller)
        )
        return Response(content=completion.body or b"", media_type=MediaType.JSON,
                        headers=completion.headers)  # fmt: skip

    @post(
        "/count_tokens",
        operation_id="countMessageTokens",
        status_code=200,
        responses={
            200: ResponseSpec(data_container=CountedTokens, description="The input's tokens"),
            **error_responses(*COUNT_ERRORS, shape=AnthropicErrorResponse),
        },
        operation_class=completion_operation(CountTokensRequest, streams=False),
        summary="Count a message request's input tokens, as the model server counts them",
    )
    async def count_tokens(
        self, request: Request[Any, Any, Any], call: NamedDependency[MessagesCall]
    ) -> Response[bytes]:
        asked, body = decode_body(await request.body(), CountTokensRequest)
        try:
            check_messages(asked)
        except Unsupported as exc:
            raise invalid_request(str(exc), exc.param, "unsupported_parameter") from None
        reservation = await call.gateway.limiter.reserve(call.caller.limit_scopes, 0)
        reservation.settle(0)  # a request on the limits, no tokens
        pool = call.gateway.pool
        try:
            async with pool.open(asked.model, "/messages/count_tokens", body) as response:
                payload = await response.aread()
        except httpx.HTTPError as exc:
            raise upstream_failure(exc, asked.model) from None
        if response.status_code >= 400:
            raise upstream_error(response.status_code, payload)
        return Response(content=payload, media_type=MediaType.JSON)

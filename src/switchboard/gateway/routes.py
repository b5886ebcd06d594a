"""HTTP surface of the gateway: ``/v1`` in OpenAI's shape. Thin: the service does the work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Operation, Reference, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import FromPath
from litestar.response import Stream

from switchboard.gateway.accounting import Caller
from switchboard.gateway.auth import authenticate
from switchboard.gateway.cache import CachePolicy
from switchboard.gateway.chunks import DONE, Chunk, StreamFailed, StreamItem
from switchboard.gateway.errors import GatewayError
from switchboard.gateway.parsing import Kind, parse_request
from switchboard.gateway.protocol import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    CompletionRequest,
    CompletionResponse,
    ErrorResponse,
    ModelCard,
    ModelList,
)
from switchboard.gateway.service import Completion, GatewayService
from switchboard.keys.services import KeyService
from switchboard.observability.request_id import request_id_of
from switchboard.web.disconnect import ClientDisconnected

log = logging.getLogger(__name__)
T = TypeVar("T")
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
SECURITY: list[dict[str, list[str]]] = [{"BearerAuth": []}]


def error_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAI error bodies for these statuses, as published in the schema."""
    meaning = {
        400: "Invalid request: `error.param` names the field",
        401: "Missing, unknown, expired or revoked API key",
        403: "Not allowed for this key",
        404: "Not found (the model, or the user named)",
        413: "Request body too large",
        429: "Rate limit reached (see `Retry-After` and the `x-ratelimit-*` headers), or a "
        "monthly budget spent (`insufficient_quota`)",
        502: "The model server failed",
        503: "No model server is available for this model",
        504: "The model server did not answer in time",
    }
    return {
        status: ResponseSpec(data_container=ErrorResponse, description=meaning[status])
        for status in statuses
    }


COMPLETION_ERRORS = error_responses(400, 401, 404, 413, 429, 502, 503, 504)


SSE_EVENT = Schema(
    type=OpenAPIType.OBJECT,
    description="One server-sent event: `data` holds a chunk as JSON, the last one `[DONE]`",
    properties={
        "data": Schema(type=OpenAPIType.STRING),
        "event": Schema(type=OpenAPIType.STRING),
        "id": Schema(type=OpenAPIType.STRING),
        "retry": Schema(type=OpenAPIType.INTEGER),
    },
    required=["data"],
)


def completion_operation(request_type: type[msgspec.Struct]) -> type[Operation]:
    """An operation whose body is ``request_type`` (validated by msgspec in the handler, not by
    Litestar, so the published schema and the validation are the same) and whose 200 is JSON,
    or server-sent events when the request says ``stream: true``."""
    reference = Reference(ref=f"#/components/schemas/{request_type.__name__}")

    class CompletionOperation(Operation):
        # Operation is a dataclass without __post_init__, so its __init__ would not call ours.
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.request_body = RequestBody(
                content={"application/json": OpenAPIMediaType(schema=reference)}, required=True
            )
            ok = (self.responses or {}).get("200")
            content = getattr(ok, "content", None)
            if content is not None:
                content["text/event-stream"] = OpenAPIMediaType(schema=SSE_EVENT)

    return CompletionOperation


async def provide_caller(
    request: Request[Any, Any, Any], keys: NamedDependency[KeyService]
) -> Caller:
    return await authenticate(request, keys)


async def listen_for_disconnect(request: Request[Any, Any, Any]) -> None:
    """Return when the client hangs up (the body was already read, so only
    ``http.disconnect`` can arrive)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def until_disconnect(request: Request[Any, Any, Any], work: Awaitable[T]) -> T:
    """``work``, cancelled (and the upstream request with it) if the client hangs up first, as
    vLLM's ``with_cancellation`` does; then ``ClientDisconnected`` (a 499 in the access log)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(listen_for_disconnect(request))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, GatewayError):
        await task
    raise ClientDisconnected("client disconnected")


class CompletionsController(Controller):
    """OpenAI-compatible completions and models."""

    path = "/v1"
    tags = ["OpenAI-compatible API"]
    security = SECURITY
    dependencies = {"caller": Provide(provide_caller)}

    @post(
        "/chat/completions",
        operation_id="createChatCompletion",
        summary="Create a chat completion (set `stream: true` for server-sent events)",
        status_code=200,
        responses=COMPLETION_ERRORS,
        operation_class=completion_operation(ChatCompletionRequest),
    )
    async def chat_completions(
        self,
        request: Request[Any, Any, Any],
        gateway: NamedDependency[GatewayService],
        caller: NamedDependency[Caller],
    ) -> Response[ChatCompletionResponse]:
        return await _complete("chat", request, gateway, caller)

    @post(
        "/completions",
        operation_id="createCompletion",
        summary="Create a text completion (set `stream: true` for server-sent events)",
        status_code=200,
        responses=COMPLETION_ERRORS,
        operation_class=completion_operation(CompletionRequest),
    )
    async def completions(
        self,
        request: Request[Any, Any, Any],
        gateway: NamedDependency[GatewayService],
        caller: NamedDependency[Caller],
    ) -> Response[CompletionResponse]:
        return await _complete("completion", request, gateway, caller)

    @get(
        "/models",
        operation_id="listModels",
        summary="List the models being served",
        responses=error_responses(401),
    )
    async def list_models(
        self, gateway: NamedDependency[GatewayService], caller: NamedDependency[Caller]
    ) -> ModelList:
        return gateway.list_models()

    @get(
        "/models/{model_id:path}",
        operation_id="retrieveModel",
        summary="Describe one model",
        responses=error_responses(401, 404, 503),
    )
    async def retrieve_model(
        self,
        model_id: FromPath[str],
        gateway: NamedDependency[GatewayService],
        caller: NamedDependency[Caller],
    ) -> ModelCard:
        return gateway.get_model(model_id.lstrip("/"))


async def _complete(
    kind: Kind, request: Request[Any, Any, Any], gateway: GatewayService, caller: Caller
) -> Response[Any]:
    parsed = parse_request(kind, await request.body())
    request.scope["state"]["model"] = parsed.request.model
    if gateway.settings.log_prompts:  # debugging only: off by default
        log.info("prompt", extra={"request_id": request_id_of(request.scope), "body": parsed.body})
    policy = CachePolicy.from_header(request.headers.get("cache-control"))
    if parsed.request.stream:
        return _stream_response(await gateway.complete(parsed, caller, cache_policy=policy))
    completion = await until_disconnect(
        request, gateway.complete(parsed, caller, cache_policy=policy)
    )
    return Response(
        content=completion.body or b"",
        media_type="application/json",
        headers=completion.headers,
    )


DONE_EVENT = b"data: [DONE]\n\n"


def sse_event(item: StreamItem) -> bytes:
    """One stream item as OpenAI's server-sent events: a chunk, an error (then ``[DONE]``, so
    that clients stop reading), or the end. Chunks and errors are JSON: no raw line break."""
    if isinstance(item, Chunk):
        return b"data: " + item.data + b"\n\n"
    if isinstance(item, StreamFailed):
        return b"data: " + item.error.to_json() + b"\n\n" + DONE_EVENT
    assert item is DONE
    return DONE_EVENT


def _stream_response(completion: Completion) -> Stream:
    async def events() -> AsyncIterator[bytes]:
        assert completion.events is not None
        async with contextlib.aclosing(completion.events) as batches:  # closes the upstream
            async for batch in batches:
                yield b"".join([sse_event(item) for item in batch])

    return Stream(
        content=events(),
        media_type="text/event-stream",
        headers={**SSE_HEADERS, **completion.headers},
    )

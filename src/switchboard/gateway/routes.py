"""HTTP surface of the gateway: ``/v1`` in OpenAI's shape. Thin: the service does the work."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Operation, Reference, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import FromPath

from switchboard.gateway.accounting import Caller
from switchboard.gateway.answers import (
    ChatCompletionResponse,
    CompletionResponse,
    ErrorResponse,
    ModelCard,
    ModelList,
)
from switchboard.gateway.auth import authenticate
from switchboard.gateway.cache import CachePolicy
from switchboard.gateway.chunks import DONE, Chunk, StreamFailed, StreamItem
from switchboard.gateway.event_stream import event_stream
from switchboard.gateway.parsing import Kind, parse_request
from switchboard.gateway.protocol import ChatCompletionRequest, CompletionRequest
from switchboard.gateway.service import GatewayService
from switchboard.keys.services import KeyService
from switchboard.web.disconnect import until_disconnect
from switchboard.web.request_id import request_id_of

log = logging.getLogger(__name__)
T = TypeVar("T")
SECURITY: list[dict[str, list[str]]] = [{"BearerAuth": []}]


def error_responses(
    *statuses: int, shape: type[msgspec.Struct] = ErrorResponse
) -> dict[int, ResponseSpec]:
    """Error bodies (OpenAI's shape unless told) for these statuses, as published in the
    schema."""
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
        status: ResponseSpec(data_container=shape, description=meaning[status])
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


def completion_operation(
    request_type: type[msgspec.Struct], *, streams: bool = True
) -> type[Operation]:
    """An operation whose body is ``request_type`` (validated by msgspec in the handler, not by
    Litestar, so the published schema and the validation are the same) and whose 200 is JSON,
    or (``streams``) server-sent events when the request says ``stream: true``."""
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
            if streams and content is not None:
                content["text/event-stream"] = OpenAPIMediaType(schema=SSE_EVENT)

    return CompletionOperation


async def provide_caller(
    request: Request[Any, Any, Any], keys: NamedDependency[KeyService]
) -> Caller:
    return await authenticate(request, keys)


@dataclass(frozen=True, slots=True)
class ApiCall:
    """Who calls, and the service that answers: the one dependency of the ``/v1`` routes. One,
    because Litestar resolves several dependencies of a level in a task group per request (a
    tenth of the gateway's CPU, measured)."""

    caller: Caller
    gateway: GatewayService


async def provide_call(request: Request[Any, Any, Any], state: State) -> ApiCall:
    resources = state.resources  # opened by the lifespan
    return ApiCall(await authenticate(request, resources.keys), resources.gateway)


class CompletionsController(Controller):
    """OpenAI-compatible completions and models."""

    path = "/v1"
    tags = ["OpenAI-compatible API"]
    security = SECURITY
    dependencies = {"call": Provide(provide_call)}

    @post(
        "/chat/completions",
        operation_id="createChatCompletion",
        summary="Create a chat completion (set `stream: true` for server-sent events)",
        status_code=200,
        responses=COMPLETION_ERRORS,
        operation_class=completion_operation(ChatCompletionRequest),
    )
    async def chat_completions(
        self, request: Request[Any, Any, Any], call: NamedDependency[ApiCall]
    ) -> Response[ChatCompletionResponse]:
        return await _complete("chat", request, call)

    @post(
        "/completions",
        operation_id="createCompletion",
        summary="Create a text completion (set `stream: true` for server-sent events)",
        status_code=200,
        responses=COMPLETION_ERRORS,
        operation_class=completion_operation(CompletionRequest),
    )
    async def completions(
        self, request: Request[Any, Any, Any], call: NamedDependency[ApiCall]
    ) -> Response[CompletionResponse]:
        return await _complete("completion", request, call)

    @get(
        "/models",
        operation_id="listModels",
        summary="List the models being served",
        responses=error_responses(401),
    )
    async def list_models(self, call: NamedDependency[ApiCall]) -> ModelList:
        return call.gateway.list_models()

    @get(
        "/models/{model_id:path}",
        operation_id="retrieveModel",
        summary="Describe one model",
        responses=error_responses(401, 404, 503),
    )
    async def retrieve_model(
        self, model_id: FromPath[str], call: NamedDependency[ApiCall]
    ) -> ModelCard:
        return call.gateway.get_model(model_id.lstrip("/"))


async def _complete(kind: Kind, request: Request[Any, Any, Any], call: ApiCall) -> Response[Any]:
    gateway, caller = call.gateway, call.caller
    parsed = parse_request(kind, await request.body())
    request.scope["state"]["model"] = parsed.request.model
    if gateway.settings.log_prompts:  # debugging only: off by default
        log.info("prompt", extra={"request_id": request_id_of(request.scope), "body": parsed.body})
    policy = CachePolicy.from_header(request.headers.get("cache-control"))
    if parsed.request.stream:
        completion = await gateway.complete(parsed, caller, cache_policy=policy)
        assert completion.events is not None
        return event_stream(completion.events, sse_event, completion.headers)
    completion = await until_disconnect(
        request.receive, gateway.complete(parsed, caller, cache_policy=policy)
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

"""HTTP surface of the gateway: ``/v1`` in OpenAI's shape. Thin: the service does the work."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.response import Stream

from switchboard.gateway.errors import GatewayError, invalid_request
from switchboard.gateway.protocol import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    CompletionRequest,
    CompletionResponse,
    ErrorResponse,
    ModelCard,
    ModelList,
)
from switchboard.gateway.service import Caller, Completion, GatewayService, Kind, ParsedRequest
from switchboard.settings import Settings

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
ERROR_RESPONSES: dict[int, Any] = {}


async def watch_disconnect(request: Request[Any, Any, Any], gone: asyncio.Event) -> None:
    """Set ``gone`` when the client hangs up (the body was already read, so only
    ``http.disconnect`` can arrive)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            gone.set()
            return


class CompletionsController(Controller):
    """OpenAI-compatible completions and models."""

    path = "/v1"
    tags = ["OpenAI-compatible API"]

    @post(
        "/chat/completions",
        operation_id="createChatCompletion",
        summary="Create a chat completion (set `stream: true` for server-sent events)",
        status_code=200,
        response_description="A chat.completion, or a stream of chat.completion.chunk events",
    )
    async def chat_completions(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[ChatCompletionRequest],
        gateway: NamedDependency[GatewayService],
        settings: NamedDependency[Settings],
    ) -> Response[ChatCompletionResponse]:
        if len(data.messages) > settings.max_messages:
            raise invalid_request(
                f"Too many messages: {len(data.messages)} (at most {settings.max_messages}).",
                param="messages",
            )
        return await _complete("chat", request, data, gateway)

    @post(
        "/completions",
        operation_id="createCompletion",
        summary="Create a text completion (set `stream: true` for server-sent events)",
        status_code=200,
    )
    async def completions(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[CompletionRequest],
        gateway: NamedDependency[GatewayService],
    ) -> Response[CompletionResponse]:
        return await _complete("completion", request, data, gateway)

    @get("/models", operation_id="listModels", summary="List the models being served")
    async def list_models(self, gateway: NamedDependency[GatewayService]) -> ModelList:
        return gateway.list_models()

    @get("/models/{model_id:path}", operation_id="retrieveModel", summary="Describe one model")
    async def retrieve_model(
        self, model_id: FromPath[str], gateway: NamedDependency[GatewayService]
    ) -> ModelCard:
        return gateway.get_model(model_id.lstrip("/"))


async def _complete(
    kind: Kind,
    request: Request[Any, Any, Any],
    data: ChatCompletionRequest | CompletionRequest,
    gateway: NamedDependency[GatewayService],
) -> Response[Any]:
    body = msgspec.json.decode(await request.body())
    parsed = ParsedRequest(kind=kind, request=data, body=body)
    caller = Caller()
    if data.stream:
        completion = await gateway.complete(parsed, caller)
        return _stream_response(completion)
    gone = asyncio.Event()
    watcher = asyncio.create_task(watch_disconnect(request, gone))
    try:
        completion = await gateway.complete(parsed, caller, disconnected=gone)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    return Response(
        content=completion.body or b"",
        media_type="application/json",
        headers=completion.headers,
    )


def _stream_response(completion: Completion) -> Stream:
    async def events() -> AsyncIterator[bytes]:
        assert completion.events is not None
        async for event in completion.events:
            yield event

    return Stream(
        content=events(),
        media_type="text/event-stream",
        headers={**SSE_HEADERS, **completion.headers},
    )


__all__ = ["CompletionsController", "ErrorResponse", "GatewayError"]

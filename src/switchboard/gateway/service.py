"""The one path to the model, for ``/v1`` callers and the browser chat alike.

validate → pick an upstream → relay (JSON, or SSE chunk by chunk) → account usage.
Routes and web controllers only translate HTTP to and from this service.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import msgspec

from switchboard.gateway.errors import GatewayError, invalid_request, upstream_timeout
from switchboard.gateway.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    ModelCard,
    ModelList,
    Usage,
)
from switchboard.gateway.relay import (
    DONE_EVENT,
    SSEEvents,
    event_data,
    has_text,
    peek,
    upstream_error,
)
from switchboard.gateway.upstream import UpstreamPool
from switchboard.settings import Settings

Kind = Literal["chat", "completion"]
T = TypeVar("T")

PATHS: dict[Kind, str] = {"chat": "/chat/completions", "completion": "/completions"}
REQUEST_TYPES: dict[Kind, type[ChatCompletionRequest] | type[CompletionRequest]] = {
    "chat": ChatCompletionRequest,
    "completion": CompletionRequest,
}


@dataclass(frozen=True)
class Caller:
    """Who is asking: an API key's owner or a signed-in person (the browser chat)."""

    user_id: int | None = None
    key_id: int | None = None
    source: Literal["api", "web"] = "api"


@dataclass
class Outcome:
    """What one request cost and how it went (for usage rows and metrics)."""

    model: str
    started: float = field(default_factory=time.monotonic)
    usage: Usage = field(default_factory=Usage)
    first_token_at: float | None = None
    status: int = 200
    stream: bool = False

    @property
    def latency_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    @property
    def ttft_ms(self) -> int | None:
        if self.first_token_at is None:
            return None
        return int((self.first_token_at - self.started) * 1000)


@dataclass
class Completion:
    """A finished answer (``body``) or a live one (``events``), plus headers for the caller."""

    outcome: Outcome
    body: bytes | None = None
    events: AsyncIterator[bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ParsedRequest:
    kind: Kind
    request: ChatCompletionRequest | CompletionRequest
    body: dict[str, Any]


def parse_request(kind: Kind, raw: bytes, settings: Settings) -> ParsedRequest:
    """Validate a request body; errors name the offending field in OpenAI's shape."""
    if len(raw) > settings.max_body_bytes:
        raise GatewayError(
            413,
            f"Request body is {len(raw)} bytes; the limit is {settings.max_body_bytes}.",
            code="request_too_large",
        )
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise invalid_request(f"The body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise invalid_request("The body must be a JSON object.", code="invalid_json")
    try:
        request = msgspec.convert(body, REQUEST_TYPES[kind])
    except msgspec.ValidationError as exc:
        raise validation_error(exc) from None
    if isinstance(request, ChatCompletionRequest) and len(request.messages) > settings.max_messages:
        raise invalid_request(
            f"Too many messages: {len(request.messages)} (at most {settings.max_messages}).",
            param="messages",
        )
    return ParsedRequest(kind, request, body)


def validation_error(exc: msgspec.ValidationError) -> GatewayError:
    """``Expected `float` <= 2.0 - at `$.temperature``` → 400 with ``param="temperature"``."""
    text, _, where = str(exc).partition(" - at `$")
    param = where.rstrip("`").lstrip(".") or None
    if text.startswith("Object missing required field"):
        field_name = text.split("`")[1]
        param = f"{param}.{field_name}" if param else field_name
    message = f"Invalid value for `{param}`: {text}" if param else text
    return invalid_request(message, param=param, code="invalid_value")


class GatewayService:
    """Relays completions to the upstream pool and accounts for them."""

    def __init__(self, settings: Settings, pool: UpstreamPool) -> None:
        self.settings = settings
        self.pool = pool

    # --- models -----------------------------------------------------------------------------
    def list_models(self) -> ModelList:
        return ModelList(data=self.pool.model_cards())

    def get_model(self, model_id: str) -> ModelCard:
        for card in self.pool.model_cards():
            if card.id == model_id:
                return card
        self.pool.candidates(model_id)  # raises 404 (unknown) or 503 (known, all down)
        raise GatewayError(404, f"The model `{model_id}` does not exist.", code="model_not_found")

    # --- completions ------------------------------------------------------------------------
    async def complete(
        self,
        parsed: ParsedRequest,
        caller: Caller,
        disconnected: asyncio.Event | None = None,
    ) -> Completion:
        """Run one completion. Streams come back as SSE event bytes ready to send."""
        request = parsed.request
        outcome = Outcome(model=request.model, stream=request.stream)
        body = dict(parsed.body)
        if request.stream:
            # Always ask for usage so it can be accounted; stripped again if the caller did not.
            asked = bool(request.stream_options and request.stream_options.include_usage)
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
            return await self._open_stream(parsed.kind, body, outcome, asked)
        payload = await self._bounded(
            self._fetch(parsed.kind, body, outcome), disconnected, outcome
        )
        return Completion(outcome=outcome, body=payload)

    async def _fetch(self, kind: Kind, body: dict[str, Any], outcome: Outcome) -> bytes:
        async with self.pool.open(outcome.model, PATHS[kind], body) as response:
            payload = await response.aread()
        if response.status_code >= 400:
            raise upstream_error(response.status_code, payload)
        peeked = peek(payload)
        if peeked and peeked.usage:
            outcome.usage = peeked.usage
        return payload

    async def _bounded(
        self, work: Awaitable[T], disconnected: asyncio.Event | None, outcome: Outcome
    ) -> T:
        """Await ``work`` within the total timeout; cancel it (closing the upstream) if the
        caller goes away first."""
        task = asyncio.ensure_future(work)
        watchers: set[asyncio.Future[Any]] = {task}
        gone = asyncio.ensure_future(disconnected.wait()) if disconnected else None
        if gone:
            watchers.add(gone)
        try:
            done, _ = await asyncio.wait(
                watchers,
                timeout=self.settings.upstream_total_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            if gone:
                gone.cancel()
        if task in done:
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, GatewayError):
            await task
        if gone is not None and gone in done:
            outcome.status = 499
            raise asyncio.CancelledError("client disconnected")
        raise upstream_timeout(outcome.model)

    async def _open_stream(
        self, kind: Kind, body: dict[str, Any], outcome: Outcome, include_usage: bool
    ) -> Completion:
        stack = contextlib.AsyncExitStack()
        response = await stack.enter_async_context(self.pool.open(outcome.model, PATHS[kind], body))
        if response.status_code >= 400:
            payload = await response.aread()
            await stack.aclose()
            raise upstream_error(response.status_code, payload)
        return Completion(
            outcome=outcome, events=self._relay(response.aiter_raw(), stack, outcome, include_usage)
        )

    async def _relay(
        self,
        chunks: AsyncIterator[bytes],
        stack: contextlib.AsyncExitStack,
        outcome: Outcome,
        include_usage: bool,
    ) -> AsyncIterator[bytes]:
        """Relay SSE events one by one; closing this generator closes the upstream request."""
        events = SSEEvents()
        deadline = outcome.started + self.settings.upstream_total_timeout
        try:
            async for chunk in chunks:
                for event in events.feed(chunk):
                    forward = self._inspect(event, outcome, include_usage)
                    if forward:
                        yield forward
                if time.monotonic() > deadline:
                    outcome.status = 504
                    yield _error_event(upstream_timeout(outcome.model))
                    yield DONE_EVENT
                    return
        except asyncio.CancelledError:
            outcome.status = 499
            raise
        except GeneratorExit:
            outcome.status = 499
            raise
        except Exception as exc:  # upstream died mid-stream: tell the client in-band
            outcome.status = 502
            yield _error_event(
                GatewayError(
                    502,
                    f"The model server failed mid-stream: {exc}",
                    type="server_error",
                    code="upstream_error",
                )
            )
            yield DONE_EVENT
        finally:
            await stack.aclose()

    def _inspect(self, event: bytes, outcome: Outcome, include_usage: bool) -> bytes | None:
        data = event_data(event)
        if data is None or data == b"[DONE]":
            return event
        peeked = peek(data)
        if peeked is None:
            return event
        if outcome.first_token_at is None and any(has_text(c) for c in peeked.choices):
            outcome.first_token_at = time.monotonic()
        if peeked.usage is not None:
            outcome.usage = peeked.usage
            if not peeked.choices and not include_usage:
                return None
        return event


def _error_event(error: GatewayError) -> bytes:
    return b"data: " + error.to_json() + b"\n\n"

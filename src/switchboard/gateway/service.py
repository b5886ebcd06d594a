"""The one path to the model, for ``/v1`` callers and the browser chat alike.

reserve rate limit → look up cache → call the upstream (relay JSON, or SSE chunk by chunk) →
record usage → settle the token reservation with the real count. Routes and web controllers
only translate HTTP to and from this service.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import httpx
import msgspec

from switchboard.gateway.cache import CachedAnswer, ResponseCache, cache_key, is_cacheable
from switchboard.gateway.errors import (
    GatewayError,
    invalid_request,
    upstream_failed,
    upstream_timeout,
)
from switchboard.gateway.greedy import fan_out_count, fan_out_event, fan_out_json
from switchboard.gateway.limits import RateLimiter, Reservation
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
from switchboard.observability.metrics import (
    ACTIVE_STREAMS,
    CACHE_REQUESTS,
    RATE_LIMITED,
    TIME_TO_FIRST_TOKEN,
    TOKENS,
    UPSTREAM_ERRORS,
    UPSTREAM_LATENCY,
)
from switchboard.settings import Settings
from switchboard.usage.writer import UsageEvent, UsageWriter

Kind = Literal["chat", "completion"]
T = TypeVar("T")

PATHS: dict[Kind, str] = {"chat": "/chat/completions", "completion": "/completions"}
CHARS_PER_TOKEN = 4  # prompt estimate for reserving tokens before the real count is known


@dataclass(frozen=True)
class Caller:
    """Who is asking: an API key's owner or a signed-in person (the browser chat)."""

    user_id: int | None
    key_id: int | None
    rpm: int
    tpm: int
    source: Literal["api", "web"] = "api"
    request_id: str = ""

    @property
    def limit_subject(self) -> str:
        return f"key:{self.key_id}" if self.key_id is not None else f"user:{self.user_id}"


@dataclass
class Outcome:
    """What one request cost and how it went (for usage rows and metrics)."""

    model: str
    stream: bool
    started: float = field(default_factory=time.monotonic)
    usage: Usage = field(default_factory=Usage)
    first_token_at: float | None = None
    status: int = 200
    cache_hit: bool = False
    delivered: bool = False
    """The stream's final ``[DONE]`` went out: a hang-up after it is not an abort."""
    copies: int = 1
    """Choices to repeat (n > 1 with greedy sampling; see greedy.py)."""

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


@dataclass(frozen=True)
class CachePolicy:
    """From the caller's ``Cache-Control``: ``no-cache`` skips the lookup, ``no-store`` also
    keeps the answer out of the cache."""

    read: bool = True
    write: bool = True

    @classmethod
    def from_header(cls, value: str | None) -> CachePolicy:
        directives = {part.strip().lower() for part in (value or "").split(",")}
        if "no-store" in directives:
            return cls(read=False, write=False)
        return cls(read="no-cache" not in directives)


class GatewayService:
    """Relays completions to the upstream pool and accounts for them."""

    def __init__(
        self,
        settings: Settings,
        pool: UpstreamPool,
        limiter: RateLimiter,
        cache: ResponseCache,
        usage: UsageWriter,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.limiter = limiter
        self.cache = cache
        self.usage = usage

    # --- models -----------------------------------------------------------------------------
    def list_models(self) -> ModelList:
        return ModelList(data=self.pool.model_cards())

    def get_model(self, model_id: str) -> ModelCard:
        for card in self.pool.model_cards():
            if card.id == model_id:
                return card
        self.pool.servers_for(model_id)  # raises 404 (unknown) or 503 (known, all down)
        raise GatewayError(404, f"The model `{model_id}` does not exist.", code="model_not_found")

    # --- completions ------------------------------------------------------------------------
    async def complete(
        self,
        parsed: ParsedRequest,
        caller: Caller,
        *,
        disconnected: asyncio.Event | None = None,
        cache_policy: CachePolicy = CachePolicy(),
    ) -> Completion:
        """Run one completion. Streams come back as SSE event bytes ready to send."""
        request = parsed.request
        outcome = Outcome(model=request.model, stream=request.stream)
        body = self._upstream_body(parsed)
        outcome.copies = fan_out_count(body)
        asked_usage = bool(request.stream_options and request.stream_options.include_usage)
        reservation = await self._reserve(caller, parsed, body, outcome)
        try:
            self.pool.servers_for(request.model)  # unknown model: 404 before any cache lookup
            key = cache_key(PATHS[parsed.kind], body) if is_cacheable(body) else None
            if key and cache_policy.read:
                cached = await self.cache.get(key)
                CACHE_REQUESTS.labels("hit" if cached else "miss").inc()
                if cached is not None:
                    return self._from_cache(cached, asked_usage, caller, outcome, reservation)
            store_key = key if cache_policy.write else None
            if request.stream:
                completion = await self._open_stream(
                    parsed.kind, body, outcome, store_key, asked_usage
                )
                completion.events = self._finishing(completion.events, caller, outcome, reservation)
            else:
                payload = await self._bounded(
                    self._fetch(parsed.kind, body, outcome, store_key), disconnected, outcome
                )
                completion = Completion(outcome=outcome, body=payload)
                self._finish(caller, outcome, reservation)
        except GatewayError as error:
            outcome.status = error.status
            self._finish(caller, outcome, reservation)
            error.headers = {**reservation.headers(), **error.headers}
            raise
        except asyncio.CancelledError:
            outcome.status = 499
            self._finish(caller, outcome, reservation)
            raise
        completion.headers.update(reservation.headers())
        completion.headers["x-cache"] = "miss" if key else "bypass"
        return completion

    def _upstream_body(self, parsed: ParsedRequest) -> dict[str, Any]:
        """The caller's JSON object with what the model server needs adjusted."""
        # `null` means "not given" in OpenAI's API; vLLM refuses it for some fields (n, ignore_eos).
        body = {key: value for key, value in parsed.body.items() if value is not None}
        if parsed.request.stream:
            # Always ask for usage so it can be accounted; dropped again if the caller did not.
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        else:
            body.pop("stream_options", None)  # vLLM refuses it on non-streaming requests
        if isinstance(body.get("messages"), list):
            body["messages"] = [_relayable_message(m) for m in body["messages"]]
        if body.get("top_logprobs") and not body.get("logprobs"):
            body["logprobs"] = True  # asking for top logprobs implies asking for logprobs
        cap = self.settings.max_tokens_cap
        if cap:
            for name in ("max_tokens", "max_completion_tokens"):
                if name in body or name == "max_tokens":
                    body[name] = min(int(body.get(name) or cap), cap)
        return body

    async def _reserve(
        self, caller: Caller, parsed: ParsedRequest, body: dict[str, Any], outcome: Outcome
    ) -> Reservation:
        prompt_estimate = (
            len(str(body.get("messages") or body.get("prompt") or "")) // CHARS_PER_TOKEN
        )
        completion_budget = (
            body.get("max_completion_tokens")
            or body.get("max_tokens")
            or self.settings.model_max_len
        )
        n = int(body.get("n") or 1)
        try:
            return await self.limiter.reserve(
                caller.limit_subject, caller.rpm, caller.tpm,
                prompt_estimate + int(completion_budget) * n,
            )  # fmt: skip
        except GatewayError as error:
            outcome.status = error.status
            RATE_LIMITED.labels(error.type).inc()
            self._record(caller, outcome)
            raise

    def _from_cache(
        self,
        cached: CachedAnswer,
        asked_usage: bool,
        caller: Caller,
        outcome: Outcome,
        reservation: Reservation,
    ) -> Completion:
        outcome.cache_hit = True
        outcome.usage = cached.usage
        outcome.first_token_at = time.monotonic()
        headers = {**reservation.headers(), "x-cache": "hit"}
        if cached.kind == "json":
            self._finish(caller, outcome, reservation)
            return Completion(outcome=outcome, body=cached.body, headers=headers)

        async def replay() -> AsyncIterator[bytes]:
            for event in cached.events:
                data = event_data(event)
                peeked = peek(data) if data and data != b"[DONE]" else None
                if peeked and peeked.usage and not peeked.choices and not asked_usage:
                    continue
                yield event

        events = self._finishing(replay(), caller, outcome, reservation)
        return Completion(outcome=outcome, events=events, headers=headers)

    async def _fetch(
        self, kind: Kind, body: dict[str, Any], outcome: Outcome, store_key: str | None
    ) -> bytes:
        async with self.pool.open(outcome.model, PATHS[kind], body) as response:
            try:
                payload = await response.aread()
            except httpx.TimeoutException:
                raise upstream_timeout(outcome.model) from None
            except httpx.HTTPError as exc:
                raise upstream_failed(outcome.model, exc) from None
        if response.status_code >= 400:
            raise upstream_error(response.status_code, payload)
        if outcome.copies > 1:
            payload = fan_out_json(payload, outcome.copies)
        peeked = peek(payload)
        if peeked and peeked.usage:
            outcome.usage = peeked.usage
        if store_key:
            await self.cache.put(
                store_key, CachedAnswer(kind="json", usage=outcome.usage, body=payload)
            )
        return payload

    async def _bounded(
        self, work: Awaitable[T], disconnected: asyncio.Event | None, outcome: Outcome
    ) -> T:
        """Await ``work`` within the total timeout; cancel it (closing the upstream) if the
        caller goes away first."""
        task = asyncio.ensure_future(work)
        gone = asyncio.ensure_future(disconnected.wait()) if disconnected else None
        try:
            done, _ = await asyncio.wait(
                {task, gone} if gone else {task},
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
            raise asyncio.CancelledError("client disconnected")
        raise upstream_timeout(outcome.model)

    async def _open_stream(
        self,
        kind: Kind,
        body: dict[str, Any],
        outcome: Outcome,
        store_key: str | None,
        include_usage: bool,
    ) -> Completion:
        stack = contextlib.AsyncExitStack()
        response = await stack.enter_async_context(self.pool.open(outcome.model, PATHS[kind], body))
        if response.status_code >= 400:
            payload = await response.aread()
            await stack.aclose()
            raise upstream_error(response.status_code, payload)
        events = self._relay(response.aiter_raw(), stack, outcome, include_usage, store_key)
        return Completion(outcome=outcome, events=events)

    async def _relay(
        self,
        chunks: AsyncIterator[bytes],
        stack: contextlib.AsyncExitStack,
        outcome: Outcome,
        include_usage: bool,
        store_key: str | None,
    ) -> AsyncIterator[bytes]:
        """Relay SSE events one by one; closing this generator closes the upstream request."""
        events = SSEEvents()
        seen: list[bytes] | None = [] if store_key else None
        deadline = outcome.started + self.settings.upstream_total_timeout
        finished = False
        try:
            async for chunk in chunks:
                for event in events.feed(chunk):
                    if outcome.copies > 1:
                        event = fan_out_event(event, outcome.copies)
                    if seen is not None:
                        seen.append(event)
                    finished = finished or event == DONE_EVENT
                    forward = self._inspect(event, outcome, include_usage)
                    if forward:
                        yield forward
                if time.monotonic() > deadline:
                    outcome.status = 504
                    yield _error_event(upstream_timeout(outcome.model))
                    yield DONE_EVENT
                    return
        except (asyncio.CancelledError, GeneratorExit):
            if not outcome.delivered:
                outcome.status = 499
            raise
        except Exception as exc:  # the model server died mid-stream: tell the client in-band
            UPSTREAM_ERRORS.labels("stream").inc()
            outcome.status = 502
            error = GatewayError(502, f"The model server failed mid-stream: {exc}",
                                 type="server_error", code="upstream_error")  # fmt: skip
            yield _error_event(error)
            yield DONE_EVENT
            return
        finally:
            await stack.aclose()
        if store_key and seen is not None and finished:
            await self.cache.put(
                store_key, CachedAnswer(kind="sse", usage=outcome.usage, events=seen)
            )

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

    async def _finishing(
        self,
        events: AsyncIterator[bytes] | None,
        caller: Caller,
        outcome: Outcome,
        reservation: Reservation,
    ) -> AsyncIterator[bytes]:
        """Wrap a stream so that usage is recorded however it ends (done, error, client gone)."""
        assert events is not None
        ACTIVE_STREAMS.inc()
        try:
            async for event in events:
                if event == DONE_EVENT:
                    outcome.delivered = True
                yield event
        except (asyncio.CancelledError, GeneratorExit):
            if not outcome.delivered:
                outcome.status = 499
            raise
        finally:
            ACTIVE_STREAMS.dec()
            with contextlib.suppress(Exception):
                await events.aclose()  # type: ignore[attr-defined]
            self._finish(caller, outcome, reservation)

    def _finish(self, caller: Caller, outcome: Outcome, reservation: Reservation) -> None:
        reservation.settle(outcome.usage.total_tokens)
        self._observe(outcome)
        self._record(caller, outcome)

    def _observe(self, outcome: Outcome) -> None:
        """Model-labelled metrics, for models a server serves (bounded labels)."""
        if outcome.status == 404 or not any(
            outcome.model in server.models for server in self.pool.servers
        ):
            return
        TOKENS.labels(outcome.model, "prompt").inc(outcome.usage.prompt_tokens)
        TOKENS.labels(outcome.model, "completion").inc(outcome.usage.completion_tokens)
        if outcome.ttft_ms is not None and not outcome.cache_hit:
            TIME_TO_FIRST_TOKEN.labels(outcome.model).observe(outcome.ttft_ms / 1000)
        if outcome.status < 400 and not outcome.cache_hit:
            UPSTREAM_LATENCY.labels(outcome.model).observe(outcome.latency_ms / 1000)
        if outcome.status in (502, 504):
            UPSTREAM_ERRORS.labels("timeout" if outcome.status == 504 else "status").inc()

    def _record(self, caller: Caller, outcome: Outcome) -> None:
        self.usage.record(
            UsageEvent(
                model=outcome.model,
                user_id=caller.user_id,
                key_id=caller.key_id,
                source=caller.source,
                prompt_tokens=outcome.usage.prompt_tokens,
                completion_tokens=outcome.usage.completion_tokens,
                latency_ms=outcome.latency_ms,
                ttft_ms=outcome.ttft_ms,
                status=outcome.status,
                cache_hit=outcome.cache_hit,
                stream=outcome.stream,
                request_id=caller.request_id,
                at=dt.datetime.now(dt.UTC),
            )
        )


def _relayable_message(message: Any) -> Any:
    """Drop null fields (vLLM refuses `name: null`); `content: null` (beside tool_calls)
    becomes "" because chat templates concatenate it as text."""
    if not isinstance(message, dict):
        return message
    cleaned = {key: value for key, value in message.items() if value is not None}
    cleaned.setdefault("content", "")
    return cleaned


REQUEST_TYPES: dict[Kind, type[ChatCompletionRequest] | type[CompletionRequest]] = {
    "chat": ChatCompletionRequest,
    "completion": CompletionRequest,
}


def parse_request(kind: Kind, raw: bytes) -> ParsedRequest:
    """Validate a body strictly against the published schema; errors name the field."""
    try:
        request = msgspec.json.decode(raw, type=REQUEST_TYPES[kind])
        body = msgspec.json.decode(raw)
    except msgspec.ValidationError as exc:
        if "got `float`" not in str(exc):
            raise validation_error(exc) from None
        # JSON Schema counts 5.0 as an integer; msgspec's strict mode does not.
        body = _integral_floats_as_ints(msgspec.json.decode(raw))
        try:
            request = msgspec.convert(body, REQUEST_TYPES[kind])
        except msgspec.ValidationError as again:
            raise validation_error(again) from None
    except msgspec.DecodeError as exc:
        raise invalid_request(f"The body is not valid JSON: {exc}", code="invalid_json") from None
    return ParsedRequest(kind, request, body)


def _integral_floats_as_ints(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral_floats_as_ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral_floats_as_ints(item) for item in value]
    return value


def validation_error(exc: msgspec.ValidationError) -> GatewayError:
    """``Expected `float` <= 2.0 - at `$.temperature``` → 400 with ``param="temperature"``."""
    text, _, where = str(exc).partition(" - at `$")
    param = where.rstrip("`").lstrip(".") or None
    for prefix in ("Object missing required field `", "Object contains unknown field `"):
        if text.startswith(prefix):
            name = text[len(prefix) :].split("`")[0]
            param = f"{param}.{name}" if param else name
    if param:
        return invalid_request(f"Invalid value for `{param}`: {text}", param, "invalid_value")
    return invalid_request(f"Invalid request body: {text}", code="invalid_value")


def _error_event(error: GatewayError) -> bytes:
    return b"data: " + error.to_json() + b"\n\n"

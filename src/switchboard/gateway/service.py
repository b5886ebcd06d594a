"""The one path to the model, for ``/v1`` callers and the browser chat alike.

reserve rate limit → look up cache → call the upstream (JSON, or a stream of typed items) →
record usage → settle the token reservation with the real count. Each step has its module
(limits, cache, streaming, accounting); routes and web controllers only translate HTTP to and from
this service.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncGenerator, Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from switchboard.budgets.service import BudgetService, OverBudget
from switchboard.gateway.accounting import Caller, Outcome, Recorder, Ticket
from switchboard.gateway.cache import CachedAnswer, SafeCache, cache_key, is_cacheable
from switchboard.gateway.chunks import DONE, Chunk, StreamItem
from switchboard.gateway.errors import GatewayError, insufficient_quota, upstream_timeout
from switchboard.gateway.greedy import fan_out_count, fan_out_json
from switchboard.gateway.limits import RateLimiter, Reservation
from switchboard.gateway.parsing import Kind, ParsedRequest
from switchboard.gateway.prompt_tokens import count_prompt
from switchboard.gateway.protocol import ModelCard, ModelList, Usage
from switchboard.gateway.relay import ChunkInfo, peek, read_chunk, upstream_error
from switchboard.gateway.streaming import InFlight, StreamPlan, open_stream
from switchboard.gateway.upstream import UpstreamPool, as_gateway_error
from switchboard.observability.metrics import CACHE_REQUESTS, RATE_LIMITED
from switchboard.settings import Settings
from switchboard.usage.writer import UsageWriter
from switchboard.web.disconnect import ClientDisconnected

log = logging.getLogger(__name__)
T = TypeVar("T")

PATHS: dict[Kind, str] = {"chat": "/chat/completions", "completion": "/completions"}
CHARS_PER_TOKEN = 4  # the rate limits' quick prompt estimate (settled with the real count)


@dataclass
class Completion:
    """A finished answer (``body``) or a live one (``events``), plus headers for the caller.

    ``events`` has already opened the upstream request: whoever receives it must iterate it to
    the end or ``aclose()`` it (``contextlib.aclosing``)."""

    outcome: Outcome
    body: bytes | None = None
    events: AsyncGenerator[StreamItem, None] | None = None
    headers: dict[str, str] = field(default_factory=dict)


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


def internal_error(request_id: str) -> GatewayError:
    reference = f" (request id {request_id})" if request_id else ""
    return GatewayError(
        500,
        f"The server had an error while processing your request{reference}.",
        type="server_error",
        code="internal_error",
    )


class GatewayService:
    """Relays completions to the upstream pool and accounts for them."""

    def __init__(
        self,
        settings: Settings,
        pool: UpstreamPool,
        limiter: RateLimiter,
        cache: SafeCache,
        usage: UsageWriter,
        budgets: BudgetService | None = None,
    ) -> None:
        self.settings = settings
        self.budgets = budgets
        self.pool = pool
        self.limiter = limiter
        self.cache = cache
        self.usage = usage
        self.recorder = Recorder(usage, pool.is_served)
        self.in_flight = InFlight()
        self.draining = False

    # --- models -----------------------------------------------------------------------------
    def list_models(self) -> ModelList:
        return ModelList(data=self.pool.model_cards())

    def get_model(self, model_id: str) -> ModelCard:
        for card in self.pool.model_cards():
            if card.id == model_id:
                return card
        self.pool.servers_for(model_id)  # raises 404 (unknown) or 503 (known, all down)
        raise GatewayError(404, f"The model `{model_id}` does not exist.", code="model_not_found")

    # --- shutdown ---------------------------------------------------------------------------
    async def drain(self, grace: float) -> bool:
        """Refuse new completions and let the streams in flight finish (at most ``grace`` s)."""
        self.draining = True
        return await self.in_flight.wait_idle(grace)

    # --- completions ------------------------------------------------------------------------
    async def complete(
        self,
        parsed: ParsedRequest,
        caller: Caller,
        *,
        disconnected: asyncio.Future[None] | None = None,
        cache_policy: CachePolicy = CachePolicy(),
    ) -> Completion:
        """Run one completion; a stream comes back as typed items (chunks.py)."""
        request = parsed.request
        outcome = Outcome(model=request.model, stream=request.stream)
        body = self._upstream_body(parsed)
        outcome.copies = fan_out_count(body)
        ticket = Ticket(caller, outcome, self.recorder)
        reservation = ticket.reservation = await self._reserve(ticket, parsed, body)
        try:
            if self.draining:
                raise GatewayError(503, "The gateway is restarting; retry in a moment.",
                                   type="server_error", code="shutting_down",
                                   headers={"Retry-After": "1"})  # fmt: skip
            self.pool.servers_for(request.model)  # unknown model: 404 before any cache lookup
            key = self._cache_key(parsed, caller)
            if key and cache_policy.read:
                cached = await self.cache.get(key)
                CACHE_REQUESTS.labels("hit" if cached else "miss").inc()
                if cached is not None:
                    completion = self._from_cache(cached, ticket)
                    completion.headers.update(reservation.headers())
                    return completion
            store_key = key if cache_policy.write else None
            if request.stream:
                events = await open_stream(
                    self.pool.open(request.model, PATHS[parsed.kind], body),
                    self._plan(parsed, store_key), ticket, self.in_flight,
                )  # fmt: skip
                completion = Completion(outcome=outcome, events=events)
            else:
                work = self._fetch(parsed.kind, body, outcome, store_key)
                payload = await self._bounded(work, disconnected, outcome)
                completion = Completion(outcome=outcome, body=payload)
                ticket.close()
        except GatewayError as error:
            ticket.close(error.status)
            error.headers = {**reservation.headers(), **error.headers}
            raise
        except asyncio.CancelledError:
            ticket.close(499)
            raise
        except Exception:
            log.exception("completion failed", extra={"request_id": caller.request_id})
            ticket.close(500)
            raise internal_error(caller.request_id) from None
        completion.headers.update(reservation.headers())  # after settling, when not a stream
        completion.headers["x-cache"] = "miss" if key else "bypass"
        return completion

    def _cache_key(self, parsed: ParsedRequest, caller: Caller) -> str | None:
        if not is_cacheable(parsed.body):
            return None
        scope = "global" if self.settings.cache_scope == "global" else f"user:{caller.user_id}"
        return cache_key(PATHS[parsed.kind], parsed.body, scope)

    def _plan(self, parsed: ParsedRequest, store_key: str | None) -> StreamPlan:
        options = parsed.request.stream_options
        include_usage = bool(options and options.include_usage)

        async def store(chunks: list[bytes], usage: Usage) -> None:
            assert store_key is not None
            await self.cache.put(store_key, CachedAnswer(kind="sse", usage=usage, events=chunks))

        return StreamPlan(
            include_usage=include_usage,
            continuous_usage=include_usage and bool(options and options.continuous_usage_stats),
            deadline=time.monotonic() + self.settings.upstream_total_timeout,
            store=store if store_key else None,
            max_store_bytes=self.settings.cache_max_bytes,
        )

    def max_tokens_cap(self, model: str) -> int:
        """``SWITCHBOARD_MAX_TOKENS_CAP``, or else the model's context length."""
        return (
            self.settings.max_tokens_cap
            or self.pool.context_length(model)
            or self.settings.model_max_len
        )

    def _upstream_body(self, parsed: ParsedRequest) -> dict[str, Any]:
        """The caller's JSON object with what the model server needs adjusted."""
        # `null` means "not given" in OpenAI's API; vLLM refuses it for some fields (n, ignore_eos).
        body = {key: value for key, value in parsed.body.items() if value is not None}
        if parsed.request.stream:
            # Usage in every chunk, so an abandoned or failed stream is accounted for what it
            # generated; removed again from what the caller did not ask for (streaming.py).
            body["stream_options"] = {"include_usage": True, "continuous_usage_stats": True}
        else:
            body.pop("stream_options", None)  # vLLM refuses it on non-streaming requests
        if isinstance(body.get("messages"), list):
            body["messages"] = [_relayable_message(m) for m in body["messages"]]
        if body.get("top_logprobs") and not body.get("logprobs"):
            body["logprobs"] = True  # asking for top logprobs implies asking for logprobs
        cap = self.max_tokens_cap(parsed.request.model)
        for name in ("max_tokens", "max_completion_tokens"):
            if name in body:
                body[name] = min(int(body[name]), cap)
        if self.settings.max_tokens_cap and not body.keys() & {
            "max_tokens",
            "max_completion_tokens",
        }:
            body["max_tokens"] = cap  # an operator's cap also bounds requests that name none
        if isinstance(body.get("min_tokens"), int) and body["min_tokens"] > cap:
            body["min_tokens"] = cap  # the cap is ours: keep min_tokens within it
        return body

    async def _reserve(
        self, ticket: Ticket, parsed: ParsedRequest, body: dict[str, Any]
    ) -> Reservation:
        """A request and its worst case in tokens on the rate limits (a quick estimate of the
        prompt: the limit is settled with the real count after), then an upper bound of its
        cost on the monthly budgets (the prompt as the engine counts it), so that concurrent
        requests cannot overspend them."""
        prompt = body.get("messages") or body.get("prompt") or ""
        prompts = len(prompt) if parsed.kind == "completion" and isinstance(prompt, list) else 1
        model = parsed.request.model
        asked = int(body.get("max_completion_tokens") or body.get("max_tokens")
                    or self.max_tokens_cap(model))  # fmt: skip
        choices = int(parsed.body.get("n") or 1)  # as asked: fan-out asks the model for fewer
        caller = ticket.caller
        try:
            reservation = await self.limiter.reserve(
                caller.limit_scopes, len(str(prompt)) // CHARS_PER_TOKEN + asked * choices * prompts
            )
        except GatewayError as error:
            RATE_LIMITED.labels(error.type).inc()
            ticket.close(error.status)
            raise
        ticket.reservation = reservation
        if self.budgets is None or not self.budgets.applies(caller.user_id, caller.key_id):
            return reservation
        try:
            prompt_tokens = await count_prompt(self.pool, parsed, body)
        except GatewayError as error:  # the model is unknown or down: refused before counting
            ticket.close(error.status)
            error.headers = {**reservation.headers(), **error.headers}
            raise
        context = self.pool.context_length(model)
        if context is not None and prompts == 1:  # the engine generates at most what fits
            asked = max(0, min(asked, context - prompt_tokens))
        try:
            ticket.hold = await self.budgets.reserve(
                caller.user_id, caller.key_id, model, prompt_tokens, asked * choices * prompts
            )
        except OverBudget as over:
            RATE_LIMITED.labels("insufficient_quota").inc()
            ticket.close(429)  # settles the rate-limit reservation with nothing used
            retry_after = int((over.renews - dt.datetime.now(dt.UTC)).total_seconds())
            refusal = insufficient_quota(over.message, retry_after)
            refusal.headers = {**reservation.headers(), **refusal.headers}
            raise refusal from None
        return reservation

    def _from_cache(self, cached: CachedAnswer, ticket: Ticket) -> Completion:
        outcome = ticket.outcome
        outcome.cache_hit = True
        outcome.usage = cached.usage
        outcome.first_token_at = time.monotonic()
        if cached.kind == "json":
            ticket.close()
            return Completion(outcome=outcome, body=cached.body, headers={"x-cache": "hit"})

        async def replay() -> AsyncGenerator[StreamItem, None]:
            try:
                for data in cached.events:
                    info = read_chunk(data)
                    yield Chunk(data, info.text if isinstance(info, ChunkInfo) else "")
                outcome.delivered = True
                yield DONE
            except (asyncio.CancelledError, GeneratorExit):
                if not outcome.delivered:
                    outcome.status = 499
                raise
            finally:
                ticket.close()

        return Completion(outcome=outcome, events=replay(), headers={"x-cache": "hit"})

    async def _fetch(
        self, kind: Kind, body: dict[str, Any], outcome: Outcome, store_key: str | None
    ) -> bytes:
        async with self.pool.open(outcome.model, PATHS[kind], body) as response:
            try:
                payload = await response.aread()
            except httpx.HTTPError as exc:
                raise as_gateway_error(exc, outcome.model) from None
        if response.status_code >= 400:
            raise upstream_error(response.status_code, payload)
        if outcome.copies > 1:
            payload = fan_out_json(payload, outcome.copies)
        peeked = peek(payload)
        if peeked is not None and peeked.error is not None:
            raise upstream_error(502, payload)
        if peeked and peeked.usage:
            outcome.usage = peeked.usage
        if store_key:
            await self.cache.put(
                store_key, CachedAnswer(kind="json", usage=outcome.usage, body=payload)
            )
        return payload

    async def _bounded(
        self, work: Awaitable[T], disconnected: asyncio.Future[None] | None, outcome: Outcome
    ) -> T:
        """Await ``work`` within the total timeout; cancel it (closing the upstream) if the
        caller goes away first (``disconnected`` completes)."""
        task = asyncio.ensure_future(work)
        gone = disconnected
        waited: set[asyncio.Future[Any]] = {task, gone} if gone else {task}
        done, _ = await asyncio.wait(
            waited,
            timeout=self.settings.upstream_total_timeout,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if task in done:
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, GatewayError):
            await task
        if gone is not None and gone in done:
            raise ClientDisconnected("client disconnected")
        raise upstream_timeout(outcome.model)


def _relayable_message(message: Any) -> Any:
    """Drop null fields (vLLM refuses `name: null`); `content: null` (beside tool_calls)
    becomes "" because chat templates concatenate it as text."""
    if not isinstance(message, dict):
        return message
    cleaned = {key: value for key, value in message.items() if value is not None}
    cleaned.setdefault("content", "")
    return cleaned

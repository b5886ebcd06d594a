"""The one path to the model, for ``/v1`` callers and the browser chat alike.

admit (limits, budget: admission.py) → the route, resolved once → the cache (cache.py) → the
upstream (a JSON answer, or a stream of batches: streaming.py) → the answer shaped for the
caller (shaping.py) → the books closed with the real usage (admission's exit). Routes and web
controllers only translate HTTP to and from this service.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import httpx

from switchboard.budgets.service import BudgetService
from switchboard.gateway.accounting import Caller, Outcome, Recorder, Ticket
from switchboard.gateway.admission import Admission, Requested
from switchboard.gateway.answers import ModelCard, ModelList, Usage
from switchboard.gateway.cache import (
    ALWAYS,
    CachedAnswer,
    CachePolicy,
    SafeCache,
    replay,
    request_cache_key,
)
from switchboard.gateway.chunks import StreamItem
from switchboard.gateway.discovery import UpstreamServer
from switchboard.gateway.errors import GatewayError, upstream_error, upstream_timeout
from switchboard.gateway.limits import RateLimiter
from switchboard.gateway.messages_surface import MESSAGES
from switchboard.gateway.parsing import Kind, ParsedRequest
from switchboard.gateway.responses_surface import RESPONSES
from switchboard.gateway.shaping import CHAT, COMPLETION
from switchboard.gateway.streaming import AnswerHook, InFlight, StreamPlan, relay
from switchboard.gateway.surface import Surface
from switchboard.gateway.upstream import UpstreamPool, as_gateway_error
from switchboard.observability.metrics import CACHE_REQUESTS
from switchboard.settings import Settings
from switchboard.usage.writer import UsageWriter

SURFACES: dict[Kind, Surface] = {s.kind: s for s in (CHAT, COMPLETION, RESPONSES, MESSAGES)}
SHUTTING_DOWN = GatewayError(503, "The gateway is restarting; retry in a moment.",
                             type="server_error", code="shutting_down",
                             headers={"Retry-After": "1"})  # fmt: skip


@dataclass
class Completion:
    """A finished answer (``body``) or a live one (``events``: batches of typed items), plus
    headers for the caller. ``events`` owns the upstream request and the books: whoever
    receives it must iterate it to the end or ``aclose()`` it (``contextlib.aclosing``)."""

    outcome: Outcome
    body: bytes | None = None
    events: AsyncGenerator[list[StreamItem], None] | None = None
    headers: dict[str, str] = field(default_factory=dict)


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
        self.admission = Admission(limiter, budgets, pool, self.recorder, self.max_tokens_cap)
        self.in_flight = InFlight()
        self.draining = False

    def list_models(self) -> ModelList:
        return ModelList(data=self.pool.model_cards())

    def get_model(self, model_id: str) -> ModelCard:
        if card := next((c for c in self.pool.model_cards() if c.id == model_id), None):
            return card
        self.pool.servers_for(model_id)  # raises 404 (unknown) or 503 (known, all down)
        raise GatewayError(404, f"The model `{model_id}` does not exist.", code="model_not_found")

    async def drain(self, grace: float) -> bool:
        """Refuse new completions and let the streams in flight finish (at most ``grace`` s)."""
        self.draining = True
        return await self.in_flight.wait_idle(grace)

    def max_tokens_cap(self, model: str) -> int:
        """``SWITCHBOARD_MAX_TOKENS_CAP``, or else the model's context length."""
        return (
            self.settings.max_tokens_cap
            or self.pool.context_length(model)
            or self.settings.model_max_len
        )

    async def complete(
        self,
        parsed: ParsedRequest,
        caller: Caller,
        *,
        cache_policy: CachePolicy = ALWAYS,
        on_answer: AnswerHook | None = None,
        stopped: Callable[[], bool] | None = None,
    ) -> Completion:
        """Run one completion; a stream comes back as batches of typed items (chunks.py).
        ``on_answer`` is given the whole answer once it is complete (a stored response);
        ``stopped`` tells whether a cancellation is the caller's Stop (not an abort)."""
        model, surface = parsed.request.model, SURFACES[parsed.kind]
        outcome = Outcome(model=model, stream=parsed.request.stream)
        outcome.stopped = stopped or outcome.stopped
        cap = self.max_tokens_cap(model)
        body = surface.upstream_body(parsed, cap, bool(self.settings.max_tokens_cap))
        outcome.copies = surface.copies(body)
        request = Requested(surface, parsed, body, on_answer)
        async with AsyncExitStack() as books:
            ticket = await books.enter_async_context(self.admission.admit(request, caller, outcome))
            if self.draining:
                raise SHUTTING_DOWN
            route = self.pool.candidates(model)  # 404 (unknown) or 503 before any cache lookup
            scope, user = self.settings.cache_scope, caller.user_id
            key = request_cache_key(parsed.kind, surface.path, parsed.body, scope, user)
            if key and cache_policy.read:
                cached = await self.cache.get(key)
                CACHE_REQUESTS.labels("hit" if cached else "miss").inc()
                if cached is not None:
                    return await self._from_cache(cached, ticket, books)
            store = key if cache_policy.write else None
            if parsed.request.stream:
                completion = await self._stream(request, route, ticket, books, store)
            else:
                try:
                    async with asyncio.timeout(self.settings.upstream_total_timeout):
                        payload = await self._fetch(request, route, outcome, store)
                except TimeoutError:
                    raise upstream_timeout(model) from None
                completion = Completion(outcome=outcome, body=payload)
        completion.headers.update(ticket.limit_headers())  # settled, unless a stream runs on
        completion.headers["x-cache"] = "miss" if key else "bypass"
        return completion

    async def _from_cache(
        self, cached: CachedAnswer, ticket: Ticket, books: AsyncExitStack
    ) -> Completion:
        outcome = ticket.outcome
        outcome.cache_hit = True
        outcome.usage = cached.usage
        outcome.first_token_at = time.monotonic()
        headers = {**ticket.limit_headers(), "x-cache": "hit"}
        if cached.kind == "json":
            return Completion(outcome=outcome, body=cached.body, headers=headers)
        events = replay(cached, outcome, books.pop_all())
        await anext(events)  # started: closing it now closes the books
        return Completion(outcome=outcome, events=events, headers=headers)

    async def _stream(
        self,
        request: Requested,
        route: list[UpstreamServer],
        ticket: Ticket,
        books: AsyncExitStack,
        store_key: str | None,
    ) -> Completion:
        """Open the upstream stream now (a refusal is still an HTTP error for the caller), then
        hand it and the books to the relay."""
        parsed = request.parsed
        response = await books.enter_async_context(
            self.pool.open(parsed.request.model, request.surface.path, request.body, route)
        )
        if response.status_code >= 400:
            raise upstream_error(response.status_code, await response.aread())

        async def store(chunks: list[bytes], usage: Usage) -> None:
            assert store_key is not None
            await self.cache.put(store_key, CachedAnswer(kind="sse", usage=usage, events=chunks))

        options = getattr(parsed.request, "stream_options", None)
        keep = store if store_key else None
        plan = StreamPlan.starting_now(options, self.settings, keep, request.on_answer)
        events = relay(books.pop_all(), response, request.surface, plan, ticket, self.in_flight)
        await anext(events)  # started: closing it now closes the upstream and the books
        return Completion(outcome=ticket.outcome, events=events)

    async def _fetch(
        self,
        request: Requested,
        route: list[UpstreamServer],
        outcome: Outcome,
        store_key: str | None,
    ) -> bytes:
        surface, body = request.surface, request.body
        try:
            async with self.pool.open(outcome.model, surface.path, body, route) as response:
                payload = await response.aread()
        except httpx.HTTPError as exc:
            raise as_gateway_error(exc, outcome.model) from None
        if response.status_code >= 400:
            raise upstream_error(response.status_code, payload)
        payload, answer = surface.read_answer(payload, outcome.copies)
        if answer.error is not None:
            raise answer.error
        outcome.usage = answer.usage or outcome.usage
        if request.on_answer is not None:
            await request.on_answer(payload)
        if store_key:
            kept = CachedAnswer(kind="json", usage=outcome.usage, body=payload)
            await self.cache.put(store_key, kept)
        return payload

"""Admission: a request's limits and budget reserved on the way in, settled on the way out.

``Admission.admit`` is one async context manager around everything a request does after its
caller is known: it reserves a request and the worst case in tokens on the rate limits, then an
upper bound of its cost on the monthly budgets (the prompt as the engine counts it: concurrent
requests cannot overspend), and refuses with 429 when either is spent. Its exit is the one place
a request's books close — answered, refused, failed, timed out or abandoned — with the tokens
really used: one usage row and one settled reservation per request, whatever happens.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from switchboard.budgets.service import BudgetService, OverBudget
from switchboard.gateway.accounting import Caller, Outcome, Recorder, Ticket
from switchboard.gateway.errors import GatewayError, insufficient_quota
from switchboard.gateway.limits import RateLimiter
from switchboard.gateway.parsing import ParsedRequest
from switchboard.gateway.prompt_tokens import count_prompt
from switchboard.gateway.surface import Surface
from switchboard.gateway.upstream import UpstreamPool
from switchboard.observability.metrics import RATE_LIMITED

log = logging.getLogger(__name__)


def internal_error(request_id: str) -> GatewayError:
    reference = f" (request id {request_id})" if request_id else ""
    return GatewayError(
        500,
        f"The server had an error while processing your request{reference}.",
        type="server_error",
        code="internal_error",
    )


class Admission:
    def __init__(
        self,
        limiter: RateLimiter,
        budgets: BudgetService | None,
        pool: UpstreamPool,
        recorder: Recorder,
        max_tokens_cap: Callable[[str], int],
    ) -> None:
        self.limiter = limiter
        self.budgets = budgets
        self.pool = pool
        self.recorder = recorder
        self.max_tokens_cap = max_tokens_cap

    def admit(self, request: Requested, caller: Caller, outcome: Outcome) -> Admitted:
        """``async with admission.admit(...) as ticket``: reserve (or raise the refusal, its
        books closed), then close the books on the way out."""
        return Admitted(self, Ticket(caller, outcome, self.recorder), request)

    async def reserve(self, ticket: Ticket, request: Requested) -> None:
        """A request and its worst case in tokens on the rate limits (a quick estimate of the
        prompt: the limit is settled with the real count after), then an upper bound of its
        cost on the monthly budgets."""
        surface, parsed, body = request.surface, request.parsed, request.body
        model = parsed.request.model
        cost = surface.cost(parsed, body, self.max_tokens_cap(model))
        caller = ticket.caller
        try:
            ticket.reservation = await self.limiter.reserve(caller.limit_scopes, cost.estimate)
        except GatewayError as error:
            RATE_LIMITED.labels(error.type).inc()
            ticket.close(error.status)
            raise
        if self.budgets is None or not self.budgets.applies(caller.user_id, caller.key_id):
            return
        try:
            self.pool.servers_for(model)  # unknown or down: refused before counting
            prompt_tokens = await count_prompt(self.pool, surface, model, body)
        except GatewayError as error:
            ticket.close(error.status)
            error.headers = {**ticket.limit_headers(), **error.headers}
            raise
        per_choice = cost.per_choice
        context = self.pool.context_length(model)
        if context is not None and cost.prompts == 1:  # the engine generates at most what fits
            per_choice = max(0, min(per_choice, context - prompt_tokens))
        completion = per_choice * cost.choices * cost.prompts
        try:
            ticket.hold = await self.budgets.reserve(
                caller.user_id, caller.key_id, model, prompt_tokens, completion
            )
        except OverBudget as over:
            RATE_LIMITED.labels("insufficient_quota").inc()
            ticket.close(429)  # settles the rate-limit reservation with nothing used
            retry_after = int((over.renews - dt.datetime.now(dt.UTC)).total_seconds())
            refusal = insufficient_quota(over.message, retry_after)
            refusal.headers = {**ticket.limit_headers(), **refusal.headers}
            raise refusal from None


@dataclass(frozen=True, slots=True)
class Requested:
    """A request on its way: its surface, its parsed form, the body relayed, and who is given
    the whole answer when it is complete (a stored response)."""

    surface: Surface
    parsed: ParsedRequest
    body: dict[str, Any]
    on_answer: Callable[[bytes], Awaitable[None]] | None = None


class Admitted:
    """One request's admission: enter reserves, exit closes the books with the outcome. An
    error the caller should see keeps its status; anything unexpected is logged and becomes a
    500 that names the request id. (A class, not a generator: it runs on every request.)"""

    __slots__ = ("admission", "request", "ticket")

    def __init__(self, admission: Admission, ticket: Ticket, request: Requested) -> None:
        self.admission = admission
        self.ticket = ticket
        self.request = request

    async def __aenter__(self) -> Ticket:
        await self.admission.reserve(self.ticket, self.request)
        return self.ticket

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: object
    ) -> None:
        ticket = self.ticket
        if error is None:
            ticket.close()
        elif isinstance(error, GatewayError):
            ticket.close(error.status)
            error.headers = {**ticket.limit_headers(), **error.headers}
        elif isinstance(error, asyncio.CancelledError | GeneratorExit):
            ended = ticket.outcome.delivered or ticket.outcome.stopped()
            ticket.close(None if ended else 499)
        elif isinstance(error, Exception):
            request_id = ticket.caller.request_id
            log.error("completion failed", exc_info=error, extra={"request_id": request_id})
            ticket.close(500)
            raise internal_error(request_id) from None

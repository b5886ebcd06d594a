"""Accounting for one request: who asked, what it cost, and closing its books exactly once.

Every request ends in exactly one usage row and one settled token reservation, whatever happens
(answered, refused, client gone, model server failed mid-stream, unexpected error): a ``Ticket``
is opened once the rate limiter let the request in and closed on every way out.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from switchboard.budgets.service import BudgetHold
from switchboard.gateway.answers import Usage
from switchboard.gateway.limits import LimitScope, Reservation
from switchboard.observability.metrics import (
    TIME_TO_FIRST_TOKEN,
    TOKENS,
    UPSTREAM_ERRORS,
    UPSTREAM_LATENCY,
    labelled,
)
from switchboard.usage.rows import UsageEvent
from switchboard.usage.writer import UsageWriter


@dataclass(frozen=True)
class Caller:
    """Who is asking: an API key's owner or a signed-in person (the browser chat)."""

    user_id: int | None
    key_id: int | None
    rpm: int
    tpm: int
    source: Literal["api", "web"] = "api"
    request_id: str = ""
    user_rpm: int = 0
    user_tpm: int = 0
    """The owner's limits over all their keys and the chat (0: none above the key's)."""

    @property
    def limit_scopes(self) -> list[LimitScope]:
        """The key's limits first (their headers go out), then its owner's; the chat: the
        person's own."""
        if self.key_id is None:
            return [LimitScope("user", self.user_id, self.rpm, self.tpm)]
        scopes = [LimitScope("key", self.key_id, self.rpm, self.tpm)]
        if self.user_id is not None and self.user_rpm and self.user_tpm:
            scopes.append(LimitScope("user", self.user_id, self.user_rpm, self.user_tpm))
        return scopes


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
    """The stream's end went out: a hang-up after it is not an abort."""
    stopped: Callable[[], bool] = field(default=lambda: False)
    """Whether the caller ended the request on purpose (the chat's Stop): then it is recorded
    as answered (its status stays), not as an abort (499) as a client that hangs up is."""
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


class Recorder:
    """Turns finished outcomes into usage rows and model-labelled metrics."""

    def __init__(self, usage: UsageWriter, is_served: Callable[[str], bool]) -> None:
        self.usage = usage
        self.is_served = is_served

    def observe(self, outcome: Outcome) -> None:
        """Model-labelled metrics, only for models a server serves (bounded labels)."""
        if outcome.status == 404 or not self.is_served(outcome.model):
            return
        model = outcome.model
        labelled(TOKENS, model, "prompt").inc(outcome.usage.prompt_tokens)
        labelled(TOKENS, model, "completion").inc(outcome.usage.completion_tokens)
        if outcome.ttft_ms is not None and not outcome.cache_hit:
            labelled(TIME_TO_FIRST_TOKEN, model).observe(outcome.ttft_ms / 1000)
        if outcome.status < 400 and not outcome.cache_hit:
            labelled(UPSTREAM_LATENCY, model).observe(outcome.latency_ms / 1000)
        if outcome.status in (502, 504):
            labelled(UPSTREAM_ERRORS, "timeout" if outcome.status == 504 else "status").inc()

    def record(self, caller: Caller, outcome: Outcome) -> None:
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


@dataclass(eq=False)
class Ticket:
    """One request's books: ``close`` settles the reservation with the tokens really used and
    writes the usage row; only the first call counts."""

    caller: Caller
    outcome: Outcome
    recorder: Recorder
    reservation: Reservation | None = None
    hold: BudgetHold | None = None
    """What the request reserved on monthly budgets (if its key or owner has one)."""
    closed: bool = False

    def limit_headers(self) -> dict[str, str]:
        """OpenAI's ``x-ratelimit-*`` headers of the request's reservation (none before it)."""
        return self.reservation.headers() if self.reservation is not None else {}

    def close(self, status: int | None = None) -> None:
        """Settle and record, once; ``status`` overrides the outcome's (None: keep it)."""
        if self.closed:
            return
        self.closed = True
        if status is not None:
            self.outcome.status = status
        if self.reservation is not None:
            self.reservation.settle(self.outcome.usage.total_tokens)
        if self.hold is not None:
            usage = self.outcome.usage
            self.hold.settle(self.outcome.model, usage.prompt_tokens, usage.completion_tokens)
        self.recorder.observe(self.outcome)
        self.recorder.record(self.caller, self.outcome)

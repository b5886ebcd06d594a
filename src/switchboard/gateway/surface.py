"""What differs between the APIs the gateway relays (chat and text completions, Responses,
Anthropic's Messages): each is a ``Surface`` the one request path consults.

A surface says where its requests go upstream, how a request is prepared for the engine, what it
may cost before it runs, how a JSON answer reports usage (or an in-band error), and how each
event of a stream becomes what the caller receives. Everything else — admission, routing,
retries, the cache, the books — is shared (service.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from switchboard.gateway.accounting import Outcome
from switchboard.gateway.answers import Usage
from switchboard.gateway.chunks import StreamItem
from switchboard.gateway.errors import GatewayError
from switchboard.gateway.parsing import Kind, ParsedRequest
from switchboard.gateway.sse import SSEEvent


@dataclass(frozen=True, slots=True)
class Cost:
    """What a request may cost, known before it runs."""

    estimate: int
    """The rate limits' quick estimate in tokens (settled with the real count after)."""
    per_choice: int
    """Tokens it may generate for each choice of each prompt (the cap when it names none)."""
    choices: int
    prompts: int


@dataclass(frozen=True, slots=True)
class Answer:
    """What a JSON answer says to the gateway."""

    usage: Usage | None
    error: GatewayError | None = None


class StreamOptions(Protocol):
    @property
    def include_usage(self) -> bool: ...

    @property
    def continuous_usage(self) -> bool: ...


class Surface(Protocol):
    kind: Kind
    path: str
    """Upstream, under the server's base URL (``/v1``)."""
    counts_prompts: bool
    """The engine counts its prompts (else a byte bound is reserved): at ``count_path`` (under
    the server root), the count in ``count_field``."""
    count_path: str
    count_field: str

    def upstream_body(self, parsed: ParsedRequest, cap: int, operators_cap: bool) -> dict[str, Any]:
        """The caller's JSON object as relayed (``cap``: the most tokens one answer may have;
        ``operators_cap``: the operator set it, so it also bounds requests that name none)."""

    def copies(self, body: dict[str, Any]) -> int:
        """How many copies of one answer to make (1: none); may adjust ``body`` to ask for
        one (greedy ``n > 1``: shaping.py)."""

    def cost(self, parsed: ParsedRequest, body: dict[str, Any], cap: int) -> Cost: ...

    def tokenize_asks(self, model: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        """What to ask vLLM's ``/tokenize`` to count the prompts (when ``counts_prompts``)."""

    def prompt_bound(self, body: dict[str, Any]) -> int:
        """An upper bound of the prompt's tokens, without asking the engine."""

    def read_answer(self, payload: bytes, copies: int) -> tuple[bytes, Answer]:
        """A JSON answer as the caller gets it, and what it says."""

    def shape(self, event: SSEEvent, plan: StreamOptions, outcome: Outcome) -> list[StreamItem]:
        """One upstream event as the caller gets it: nothing, chunks, then the end (``DONE``)
        or a failure (``StreamFailed``)."""

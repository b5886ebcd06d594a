"""How many prompt tokens a request will cost, counted before it runs (for budget reservations).

Budgets must hold when many requests arrive at once, so a request reserves an upper bound of
what the engine will count, never an estimate that may fall short. The engine's own count comes
from vLLM's ``/tokenize`` with the same messages, tools and template switches: its tokenizer and
chat template, the very number the answer's ``usage.prompt_tokens`` will report. If no model
server can say, a bound is taken instead: a byte-level BPE token covers at least one byte, so a
prompt has at most as many tokens as the bytes of its rendered text; the messages and tools as
JSON (tools twice: a template may indent them), plus an allowance for what the template adds.
"""

from __future__ import annotations

import asyncio
from typing import Any

from switchboard.gateway.surface import Surface
from switchboard.gateway.upstream import UpstreamPool
from switchboard.observability.metrics import PROMPT_COUNTS


async def count_prompt(
    pool: UpstreamPool, surface: Surface, model: str, body: dict[str, Any]
) -> int:
    """The engine's prompt tokens for ``body`` (the relayed request), or the surface's bound."""
    asks = surface.tokenize_asks(model, body) if surface.counts_prompts else []
    if asks:
        path, field = surface.count_path, surface.count_field
        counts = await asyncio.gather(*(pool.tokenize(model, ask, path, field) for ask in asks))
        if all(count is not None for count in counts):
            PROMPT_COUNTS.labels("tokenizer").inc()
            return sum(count for count in counts if count is not None)
    PROMPT_COUNTS.labels("bound").inc()
    return surface.prompt_bound(body)

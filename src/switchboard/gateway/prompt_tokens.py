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

import msgspec

from switchboard.gateway.parsing import ParsedRequest
from switchboard.gateway.upstream import UpstreamPool
from switchboard.observability.metrics import PROMPT_COUNTS

TEMPLATE_BYTES = 2048
"""What a chat template adds once (system preamble, tool instructions), in bytes: generous."""
MESSAGE_BYTES = 64
"""What a template adds per message (role markers, separators), in bytes."""
CHAT_FIELDS = ("messages", "tools", "chat_template_kwargs", "add_generation_prompt",
               "continue_final_message")  # fmt: skip
"""What decides a chat prompt's tokens: the fields vLLM's ``/tokenize`` takes from a chat."""


def prompt_bound(parsed: ParsedRequest, body: dict[str, Any]) -> int:
    """An upper bound of the prompt's tokens, without asking the engine."""
    if parsed.kind == "completion":
        prompts = body.get("prompt")
        texts = prompts if isinstance(prompts, list) else [prompts]
        return sum(len(str(text).encode()) + MESSAGE_BYTES for text in texts)
    messages = body.get("messages") or []
    size = len(msgspec.json.encode(messages)) + 2 * len(msgspec.json.encode(body.get("tools")))
    return size + MESSAGE_BYTES * len(messages) + TEMPLATE_BYTES


async def count_prompt(pool: UpstreamPool, parsed: ParsedRequest, body: dict[str, Any]) -> int:
    """The engine's prompt tokens for ``body`` (the relayed request), or ``prompt_bound``."""
    model = parsed.request.model
    if parsed.kind == "chat":
        asks = [{"model": model, **{k: body[k] for k in CHAT_FIELDS if k in body}}]
    else:
        prompts = body.get("prompt")
        texts = prompts if isinstance(prompts, list) else [prompts]
        asks = [{"model": model, "prompt": text} for text in texts]
    counts = await asyncio.gather(*(pool.tokenize(model, ask) for ask in asks))
    if any(count is None for count in counts):
        PROMPT_COUNTS.labels("bound").inc()
        return prompt_bound(parsed, body)
    PROMPT_COUNTS.labels("tokenizer").inc()
    return sum(count for count in counts if count is not None)

"""``n > 1`` with greedy sampling (temperature 0): OpenAI returns n identical choices; vLLM refuses
the request. The gateway asks the model for one choice and repeats it ``n`` times, counting the
completion tokens ``n`` times as OpenAI does."""

from __future__ import annotations

from typing import Any

import msgspec


def fan_out_count(body: dict[str, Any]) -> int:
    """How many copies to make (1: nothing to do). Adjusts ``body`` to ask for one choice."""
    n = int(body.get("n") or 1)
    if n > 1 and body.get("temperature") == 0:
        body["n"] = 1
        return n
    return 1


def _fan_out(payload: dict[str, Any], n: int) -> dict[str, Any]:
    choices = payload.get("choices")
    if isinstance(choices, list) and choices:
        payload["choices"] = [{**choice, "index": i} for i in range(n) for choice in choices]
    usage = payload.get("usage")
    if isinstance(usage, dict) and usage.get("completion_tokens") is not None:
        usage["completion_tokens"] = int(usage["completion_tokens"]) * n
        usage["total_tokens"] = int(usage.get("prompt_tokens") or 0) + usage["completion_tokens"]
    return payload


def fan_out_json(raw: bytes, n: int) -> bytes:
    """A response body, or one stream chunk's JSON, with its choice repeated ``n`` times."""
    return msgspec.json.encode(_fan_out(msgspec.json.decode(raw), n))

"""vLLM's Anthropic Messages API as the fake model server answers it (unit tests only): the last
user message echoed word by word, as one message or as Anthropic's named events."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

_ids = itertools.count(1)


def input_text(body: dict[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    if isinstance(content, list):
        return " ".join(str(block.get("text", "")) for block in content if isinstance(block, dict))
    return str(content)


def message(body: dict[str, Any], words: list[str], prompt_tokens: int) -> dict[str, Any]:
    return {
        "id": f"msg_fake{next(_ids)}",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [{"type": "text", "text": " ".join(words)}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": prompt_tokens, "output_tokens": len(words)},
    }


def event(name: str, **data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()


async def events(
    body: dict[str, Any], words: list[str], prompt_tokens: int
) -> AsyncIterator[bytes]:
    start = {**message(body, [], prompt_tokens), "content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": prompt_tokens, "output_tokens": 0}
    yield event("message_start", message=start)
    yield event("content_block_start", index=0, content_block={"type": "text", "text": ""})
    yield event("ping")
    for index, word in enumerate(words):
        text = word + (" " if index < len(words) - 1 else "")
        yield event("content_block_delta", index=0, delta={"type": "text_delta", "text": text})
    yield event("content_block_stop", index=0)
    yield event(
        "message_delta",
        delta={"stop_reason": "end_turn", "stop_sequence": None},
        usage={"output_tokens": len(words)},
    )
    yield event("message_stop")

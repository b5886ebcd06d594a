"""vLLM's Responses API as the fake model server answers it (unit tests only): the last input
message echoed word by word, as one JSON response or as its named events."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

_ids = itertools.count(1)


def input_text(body: dict[str, Any]) -> str:
    """The text of the last input item (a string input is one user message)."""
    items = body.get("input")
    if isinstance(items, str):
        return items
    last = items[-1] if isinstance(items, list) and items else {}
    content = last.get("content") if isinstance(last, dict) else None
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or last.get("output") or "")


def response(
    body: dict[str, Any], words: list[str], prompt_tokens: int, status: str, number: int = 0
) -> dict[str, Any]:
    text = " ".join(words)
    message = {
        "type": "message",
        "id": f"msg_{next(_ids)}",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }
    done = status == "completed"
    usage = {
        "input_tokens": prompt_tokens,
        "output_tokens": len(words),
        "total_tokens": prompt_tokens + len(words),
    }
    return {
        "id": f"resp_fake{number or next(_ids)}",
        "object": "response",
        "created_at": 1,
        "model": body["model"],
        "status": status,
        "output": [message] if done else [],
        "usage": usage if done else None,
        "instructions": body.get("instructions"),
        "previous_response_id": None,
        "store": body.get("store", True),
        "tools": [],
    }


def event(name: str, number: int, **data: Any) -> bytes:
    body = {"type": name, "sequence_number": number, **data}
    return f"event: {name}\ndata: {json.dumps(body)}\n\n".encode()


async def events(
    body: dict[str, Any], words: list[str], prompt_tokens: int
) -> AsyncIterator[bytes]:
    """OpenAI's event sequence for one text answer, as vLLM streams it."""
    number = next(_ids)
    done = response(body, words, prompt_tokens, "completed", number)
    item = done["output"][0]
    started = {**item, "status": "in_progress", "content": []}
    part = {"type": "output_text", "text": "", "annotations": []}
    where = {"item_id": item["id"], "output_index": 0}
    numbers = itertools.count()
    yield event(
        "response.created",
        next(numbers),
        response=response(body, words, prompt_tokens, "in_progress", number),
    )
    yield event("response.output_item.added", next(numbers), output_index=0, item=started)
    yield event("response.content_part.added", next(numbers), **where, content_index=0, part=part)
    for index, word in enumerate(words):
        delta = word + (" " if index < len(words) - 1 else "")
        yield event(
            "response.output_text.delta",
            next(numbers),
            **where,
            content_index=0,
            delta=delta,
            logprobs=[],
        )
    text = " ".join(words)
    yield event(
        "response.output_text.done", next(numbers), **where, content_index=0, text=text, logprobs=[]
    )
    yield event(
        "response.content_part.done",
        next(numbers),
        **where,
        content_index=0,
        part={**part, "text": text},
    )
    yield event("response.output_item.done", next(numbers), output_index=0, item=item)
    yield event("response.completed", next(numbers), response=done)

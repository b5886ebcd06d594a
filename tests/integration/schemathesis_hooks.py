"""Schemathesis hooks for the contract test (loaded through ``SCHEMATHESIS_HOOKS``).

Schema-valid requests whose acceptance depends on the model being served leave out the fields
that make it so; vLLM rightly refuses them with a 400, which no schema can predict:

- ``tools``, ``tool_choice``, ``parallel_tool_calls`` and their legacy forms ``functions``,
  ``function_call``: what vLLM does with them depends on the model's chat template and tool
  parser (tool calling has its own tests);
- ``suffix``: a fill-in-the-middle model uses it, another refuses it;
- ``logit_bias``, ``stop_token_ids``: token ids of the model's vocabulary; for the same reason
  a prompt of token ids keeps its ids within the smallest vocabulary (below 1,000);
- ``continue_final_message`` with ``add_generation_prompt``: vLLM allows only one of them;
- ``min_tokens`` above ``max_tokens``: vLLM refuses it (a constraint between two fields), and
  so are ``best_of`` above ``n`` (the gateway's) and a thinking budget not below
  ``max_tokens`` (Anthropic's);
- images, audio and files in chat messages, and images in Responses items (a message's
  ``content``, a function call output's ``output``): a model that cannot read them refuses them (the
  CPU model reads text only); positive cases keep the text parts. Every Responses item type
  the gateway publishes is sent as generated (the gateway checks each by its type), but for
  ``item_reference``: it names a stored item, so a generated id is rightly a 404 (a user
  message stands in for it; references have their own tests);
- Anthropic's content blocks (``messages[].content`` and ``system`` as lists): the gateway
  publishes them as objects and leaves them to the model server, which checks each block's
  fields (``text``, ``source``, ``tool_use_id`` …) by its type; positive cases send text;
- a JSON ``response_format``: vLLM 0.32 compiles it into a grammar that its sampler can
  contradict under extreme sampling values (``top_p`` near 0, ``repetition_penalty`` near 0,
  ``min_tokens``, ``bad_words``): "grammar rejected tokens", answered as a 500, which the
  gateway relays as a 502. Structured output is exercised with sane values elsewhere.

Only positive cases are changed (``map_case`` runs in every phase, coverage included); negative
cases keep their violation and must still be refused.
"""

from __future__ import annotations

from typing import Any, TypeGuard

import schemathesis
from schemathesis import GenerationMode

MODEL_DEPENDENT = (
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "functions",
    "function_call",
    "logit_bias",
    "stop_token_ids",
    "suffix",
)


def text_only(body: dict[str, Any]) -> dict[str, Any]:
    """A chat body whose multi-part messages keep their text parts (or become text)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return body

    def texts(message: Any) -> Any:
        parts = message.get("content") if isinstance(message, dict) else None
        if not isinstance(parts, list):
            return message
        kept = [part for part in parts if isinstance(part, dict) and part.get("type") == "text"]
        return {**message, "content": kept or "parts"}

    return {**body, "messages": [texts(message) for message in messages]}


def is_number(value: Any) -> TypeGuard[int | float]:
    """An integer as JSON Schema counts them: 10.0 is one too (the gateway takes it so)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def within_vocabulary(prompt: list[Any]) -> list[Any]:
    """Token ids (alone or in lists) taken below 1,000: every model's vocabulary has them."""

    def small(item: Any) -> Any:
        if is_number(item):
            return int(item) % 1000
        return [small(token) for token in item] if isinstance(item, list) else item

    return [small(item) for item in prompt]


def without_images(body: dict[str, Any]) -> dict[str, Any]:
    """A Responses body whose items keep every part but images, and no item references (see
    the module's docstring): each other item type the gateway publishes is sent as generated."""
    items = body.get("input")
    if not isinstance(items, list):
        return body

    def texts(item: Any) -> Any:
        if not isinstance(item, dict):
            return item
        if item.get("type") == "item_reference":
            return {"type": "message", "role": "user", "content": "a reference"}
        kept = dict(item)
        for field in ("content", "output"):
            parts = item.get(field)
            if isinstance(parts, list) and any(
                isinstance(part, dict) and part.get("type") == "input_image" for part in parts
            ):
                text = [
                    part
                    for part in parts
                    if not (isinstance(part, dict) and part.get("type") == "input_image")
                ]
                kept[field] = text or "parts"
        return kept

    return {**body, "input": [texts(item) for item in items]}


def as_text_blocks(body: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic body whose content blocks are text (see the module's docstring)."""
    messages = body.get("messages")
    if isinstance(messages, list):
        body = {
            **body,
            "messages": [
                {**message, "content": "blocks"}
                if isinstance(message, dict) and isinstance(message.get("content"), list)
                else message
                for message in messages
            ],
        }
    if isinstance(body.get("system"), list):
        body = {**body, "system": "blocks"}
    return body


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    body = case.body
    positive = case.meta is None or case.meta.generation.mode == GenerationMode.POSITIVE
    if positive and isinstance(body, dict):
        kept = {key: value for key, value in body.items() if key not in MODEL_DEPENDENT}
        if kept.get("continue_final_message") and kept.get("add_generation_prompt") is not False:
            kept.pop("continue_final_message")
        limits = [kept.get(name) for name in ("max_tokens", "max_completion_tokens")]
        bound = min((limit for limit in limits if is_number(limit)), default=None)
        if is_number(kept.get("min_tokens")) and bound is not None and kept["min_tokens"] > bound:
            kept.pop("min_tokens")
        if is_number(kept.get("best_of")) and kept["best_of"] > (kept.get("n") or 1):
            kept.pop("best_of")
        thinking = kept.get("thinking")
        if isinstance(thinking, dict) and thinking.get("budget_tokens", 0) >= kept.get(
            "max_tokens", 0
        ):
            kept.pop("thinking")
        if isinstance(kept.get("prompt"), list):
            kept["prompt"] = within_vocabulary(kept["prompt"])
        if case.operation.path == "/v1/chat/completions":
            kept = text_only(kept)
        if case.operation.path == "/v1/responses":
            kept = without_images(kept)
        response_format = kept.get("response_format")
        if isinstance(response_format, dict) and response_format.get("type") != "text":
            kept.pop("response_format")
        if case.operation.path.startswith("/v1/messages"):
            kept = as_text_blocks(kept)
        if kept != body:
            case.body = kept
    return case

"""Tool calls as vLLM's OpenAI server sends them (``--enable-auto-tool-choice
--tool-call-parser hermes``), for the fake upstream.

Recorded from vLLM's format: a JSON answer's message carries every field of vLLM's ``ChatMessage``
(nulls included: ``refusal``, ``annotations``, ``audio``, ``function_call``,
``reasoning_content``), ``content`` null and ``finish_reason`` ``"tool_calls"``. A stream opens
with ``{"role": "assistant", "content": ""}``; each call starts with a delta
``{"index", "id", "type": "function", "function": {"name"}}``, then its arguments arrive in pieces
``{"index", "function": {"arguments"}}``; the last chunk has an empty delta and ``finish_reason``
``"tool_calls"``.
"""

from __future__ import annotations

import json
from typing import Any

ARGUMENT_PIECE = 6
"""Characters of the arguments per streamed delta (vLLM streams them as the model writes)."""


def wants_tools(body: dict[str, Any]) -> bool:
    """The model calls a tool: tools are offered, allowed, and no tool result is pending."""
    messages = body.get("messages") or []
    if not body.get("tools") or body.get("tool_choice") == "none":
        return False
    return not (messages and messages[-1].get("role") == "tool")


def planned_calls(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The calls the fake model makes: the named tool, or every offered tool when parallel
    calls are allowed (else the first), with the last user message as ``{"query": ...}``."""
    tools = [tool["function"]["name"] for tool in body["tools"]]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        tools = [choice["function"]["name"]]
    elif body.get("parallel_tool_calls") is False:
        tools = tools[:1]
    users = [m for m in body["messages"] if m.get("role") == "user"]
    query = str(users[-1].get("content") if users else "")
    return [
        {
            "id": f"chatcmpl-tool-{index:032x}",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps({"query": query})},
        }
        for index, name in enumerate(tools)
    ]


def message(calls: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "annotations": None,
        "audio": None,
        "function_call": None,
        "tool_calls": calls,
        "reasoning_content": None,
    }


def deltas(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``delta`` of each chunk after the first, in order (without the final empty one)."""
    out: list[dict[str, Any]] = []
    for index, call in enumerate(calls):
        function = call["function"]
        start = {
            "index": index,
            "id": call["id"],
            "type": "function",
            "function": {"name": function["name"]},
        }
        out.append({"tool_calls": [start]})
        arguments = function["arguments"]
        for at in range(0, len(arguments), ARGUMENT_PIECE):
            piece = {"index": index, "function": {"arguments": arguments[at : at + ARGUMENT_PIECE]}}
            out.append({"tool_calls": [piece]})
    return out


def tool_answer(body: dict[str, Any]) -> list[str]:
    """After tool results, the model answers with them (words of every tool message)."""
    results = [str(m.get("content")) for m in body["messages"] if m.get("role") == "tool"]
    return " ".join(["Tools", "said:", *results]).split()

"""What the request structs cannot say, and what happens to each accepted field on the way.

Every field of OpenAI's published API is accepted (protocol.py types and bounds it); then, per
field, it is relayed (the engine supports it), converted (OpenAI's legacy forms, to what vLLM
takes), dropped (it has no meaning for a self-hosted engine), or refused with a 400 that names
it (it asks for something no self-hosted engine does). The table is in docs/api.md; ADR 0010
says why. Every problem of a request is named in one answer, not the first alone.
"""

from __future__ import annotations

from typing import Any

from switchboard.gateway.protocol import (
    INT32_MAX,
    MAX_PROMPTS,
    AllowedTools,
    ChatCompletionRequest,
    CompletionRequest,
    FunctionName,
)

Problem = tuple[str, str]
"""(param, why)."""

DROPPED = frozenset({
    "metadata", "store", "service_tier", "safety_identifier", "prompt_cache_key",
    "prompt_cache_retention", "prompt_cache_options", "verbosity", "prediction", "modalities",
    "best_of",
})  # fmt: skip
"""Accepted and checked, then not relayed: OpenAI's dashboards, tiers, caching and prediction
knobs have no meaning for a self-hosted engine (vLLM caches prefixes by itself)."""


class ContractError(ValueError):
    """What is wrong with a request: every problem, each naming its field."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"`{param}`: {why}" for param, why in problems))
        self.problems = problems


def check_chat(request: ChatCompletionRequest) -> None:
    problems: list[Problem] = []
    for index, tool in enumerate(request.tools or []):
        if tool.type == "custom":
            problems.append((f"tools[{index}].type", "custom tools (free-form input) are not "
                             "supported: use function tools"))  # fmt: skip
        elif tool.function is None:
            problems.append((f"tools[{index}].function", "a function tool needs `function`"))
    if request.tools and request.functions:
        problems.append(("functions", "send `tools` or the legacy `functions`, not both"))
    named = request.function_call
    if isinstance(named, FunctionName) and named.name not in {
        f.name for f in request.functions or []
    }:
        problems.append(("function_call", f"`function_call` names `{named.name}`, which is not "
                         "among `functions`"))  # fmt: skip
    if request.tool_choice is not None and request.function_call is not None:
        problems.append(("function_call", "send `tool_choice` or the legacy `function_call`, "
                         "not both"))  # fmt: skip
    if isinstance(request.tool_choice, AllowedTools):
        problems.append(("tool_choice", "`allowed_tools` is not supported: send the allowed "
                         "tools in `tools`"))  # fmt: skip
    if (request.modalities and "audio" in request.modalities) or request.audio:
        problems.append(("modalities", "audio output is not supported: ask for text"))
    if request.web_search_options is not None:
        problems.append(("web_search_options", "web search is not supported here: give the "
                         "model what it needs in the messages, or a function tool"))  # fmt: skip
    if request.moderation is not None:
        problems.append(("moderation", "moderation is not offered by this gateway"))
    if problems:
        raise ContractError(problems)


def check_completion(request: CompletionRequest) -> None:
    problems: list[Problem] = []
    prompt = request.prompt
    if isinstance(prompt, list):
        problems += _prompt_list_problems(prompt)
    if request.best_of is not None and request.best_of > (request.n or 1):
        problems.append(("best_of", "`best_of` above `n` is not supported (vLLM no longer "
                         "picks the best of several): ask for `n` answers"))  # fmt: skip
    if problems:
        raise ContractError(problems)


def _prompt_list_problems(prompt: list[Any]) -> list[Problem]:
    if all(isinstance(item, str) for item in prompt):
        if len(prompt) > MAX_PROMPTS:
            return [("prompt", f"at most {MAX_PROMPTS} prompts")]
        return [("prompt", "a prompt is not empty")] if not all(prompt) else []
    if all(isinstance(item, int) and not isinstance(item, bool) for item in prompt):
        return (
            []
            if all(0 <= item <= INT32_MAX for item in prompt)
            else [("prompt", f"token ids are 0 to {INT32_MAX}")]
        )
    if all(isinstance(item, list) and item for item in prompt):
        if len(prompt) > MAX_PROMPTS:
            return [("prompt", f"at most {MAX_PROMPTS} prompts")]
        ids = [token for item in prompt for token in item]
        if all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t <= INT32_MAX for t in ids):
            return []
        return [("prompt", f"token ids are 0 to {INT32_MAX}")]
    return [("prompt", "a text, a list of texts, token ids, or a list of token-id lists")]


def relayed(body: dict[str, Any]) -> dict[str, Any]:
    """The body as vLLM takes it: dropped fields out, legacy forms converted."""
    body = {key: value for key, value in body.items() if key not in DROPPED}
    options = body.get("stream_options")
    if isinstance(options, dict) and "include_obfuscation" in options:
        body["stream_options"] = {k: v for k, v in options.items() if k != "include_obfuscation"}
    functions = body.pop("functions", None)
    if functions:
        body["tools"] = [{"type": "function", "function": f} for f in functions]
    call = body.pop("function_call", None)
    if call is not None and functions:  # a mode without functions means nothing: dropped
        body["tool_choice"] = (
            call if isinstance(call, str) else {"type": "function", "function": call}
        )
    return body


def prompt_count(body: dict[str, Any]) -> int:
    """How many prompts a text completion asks for (a list of texts or of token lists)."""
    prompt = body.get("prompt")
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], str | list):
        return len(prompt)
    return 1

"""OpenAI's Responses API (``POST /v1/responses``) as the gateway accepts it.

The fields are OpenAI's; what a self-hosted engine cannot do is refused with a 400 that names the
field (hosted tools, background mode, server-side conversations and prompt templates). Input
items are checked by their type (responses_items.py) and relayed as sent.
``previous_response_id`` and ``store`` are the gateway's: stored responses live in its database
(the ``responses`` feature), so a chain of responses works across gateway and vLLM replicas.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from switchboard.gateway.protocol import INT32_MAX, Penalty, Temperature, TopP, only_null
from switchboard.gateway.responses_items import INPUT_ITEM_SCHEMA, Unsupported, check_items

__all__ = ["ResponsesRequest", "Unsupported", "check_supported"]

MaxOutputTokens = Annotated[int, Meta(ge=1, le=1_000_000)]
Includable = Literal[
    "code_interpreter_call.outputs",
    "computer_call_output.output.image_url",
    "file_search_call.results",
    "message.input_image.image_url",
    "message.output_text.logprobs",
    "reasoning.encrypted_content",
]
"""The ``include`` values vLLM takes (OpenAI's less the two of its hosted web search): any
other would be vLLM's own 400, so the gateway answers it, naming the item."""
InputItems = Annotated[
    list[Annotated[dict[str, Any], Meta(extra_json_schema=INPUT_ITEM_SCHEMA)]], Meta(min_length=1)
]
"""Items checked by their type in ``check_items`` and relayed as sent (responses_items.py)."""


class FunctionTool(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    type: Literal["function"]
    name: Annotated[str, Meta(min_length=1, max_length=64, pattern="^[A-Za-z0-9_-]+$")]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class TextFormat(msgspec.Struct, omit_defaults=True):
    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None


class TextConfig(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class Reasoning(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    effort: Literal["minimal", "low", "medium", "high"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    context: Literal["auto", "current_turn", "all_turns"] | None = None
    """Which turns' reasoning the model sees: dropped (vLLM reasons over what it is sent)."""


class AccessPrograms(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    cyber: Literal["standard", "daybreak_blue", "daybreak_red"] | None = None


class BackgroundOptions(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    completion_window: Literal["soonest", "2h", "8h"] | None = None
    continuation_id: Annotated[str, Meta(max_length=256)] | None = None


class ContextManagement(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    type: Literal["compaction"]
    compact_threshold: Annotated[int, Meta(ge=1)] | None = None


class ImageOptions(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    context_compression: Literal["auto", "enabled", "disabled"] | None = None


DROPPED = (
    "access_programs",
    "background_options",
    "context_management",
    "image",
    "prompt_cache_options",
    "prompt_cache_retention",
)
"""Accepted and checked, then not relayed (ADR 0010): OpenAI's access programs, background
windows (background mode is refused), server-side compaction, image compression and prompt
caching knobs have no meaning for a self-hosted engine (vLLM caches prefixes by itself)."""


class ResponsesRequest(
    msgspec.Struct, omit_defaults=True, kw_only=True, forbid_unknown_fields=True
):
    model: str
    input: str | InputItems
    """Required here: without stored prompts or conversations there is nothing else to answer."""
    instructions: str | None = None
    max_output_tokens: MaxOutputTokens | None = None
    previous_response_id: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    store: bool = True
    stream: bool = False
    temperature: Temperature | None = None
    top_p: TopP | None = None
    tools: Annotated[list[dict[str, Any]], Meta(max_length=128)] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    reasoning: Reasoning | None = None
    metadata: (
        Annotated[dict[str, Annotated[str, Meta(max_length=512)]], Meta(max_length=16)] | None
    ) = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    service_tier: Literal["auto", "default", "flex", "scale", "priority"] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | None = None
    max_tool_calls: Annotated[int, Meta(ge=0)] | None = None
    access_programs: AccessPrograms | None = None
    background_options: BackgroundOptions | None = None
    context_management: Annotated[list[ContextManagement], Meta(max_length=8)] | None = None
    image: ImageOptions | None = None
    prompt_cache_options: dict[str, Any] | None = None
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    moderation: Annotated[dict[str, Any] | None, only_null("moderation")] = None
    include: list[Includable] | None = None
    background: Annotated[
        bool | None,
        Meta(
            extra_json_schema={"enum": [False, None], "description": "Background mode is refused."}
        ),
    ] = None
    conversation: Annotated[str | dict[str, Any] | None, only_null("server-side conversations")] = (
        None
    )
    prompt: Annotated[dict[str, Any] | None, only_null("stored prompt templates")] = None
    stream_options: dict[str, Any] | None = None
    # vLLM's sampling extras, as on chat completions
    top_k: Annotated[int, Meta(ge=-1, le=INT32_MAX)] | None = None
    min_p: Annotated[float, Meta(ge=0.0, le=1.0)] | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None


def check_supported(request: ResponsesRequest) -> None:
    """Raise ``Unsupported`` for what a self-hosted engine cannot do."""
    if request.background:
        raise Unsupported("background", "Background mode is not supported: send the request "
                          "and read the answer (or stream it).")  # fmt: skip
    if request.conversation is not None:
        raise Unsupported("conversation", "Server-side conversations are not supported: chain "
                          "responses with `previous_response_id`.")  # fmt: skip
    if request.prompt is not None:
        raise Unsupported("prompt", "Stored prompt templates are not supported: send "
                          "`instructions` and `input`.")  # fmt: skip
    if request.moderation is not None:
        raise Unsupported("moderation", "Moderation is not offered by this gateway.")
    if isinstance(request.input, list):
        check_items(request.input)
    for index, tool in enumerate(request.tools or []):
        kind = tool.get("type")
        if kind != "function":
            hosted = f"`{kind}`" if isinstance(kind, str) else "this tool"
            why = f"Hosted tools ({hosted}) are not supported: only `function` tools."
            raise Unsupported(f"tools[{index}].type", why)
        try:
            msgspec.convert(tool, FunctionTool)
        except msgspec.ValidationError as exc:
            raise Unsupported(f"tools[{index}]", f"Invalid function tool: {exc}") from None

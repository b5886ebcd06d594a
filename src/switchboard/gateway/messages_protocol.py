"""Anthropic's Messages API (``POST /v1/messages``, ``/v1/messages/count_tokens``) as the gateway
accepts it: Anthropic's fields, typed and bounded; the engine decides the content blocks it can
render. Server tools (web search, code execution, computer use …), MCP servers and containers
ask for what no self-hosted engine does: a 400 naming the field. ``metadata`` and
``service_tier`` have no meaning here: checked, then dropped."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from switchboard.gateway.protocol import INT32_MAX, MAX_MESSAGES, only_null
from switchboard.gateway.responses_protocol import Unsupported

StopText = Annotated[str, Meta(min_length=1)]
ToolName = Annotated[str, Meta(min_length=1, max_length=128, pattern="^[A-Za-z0-9_-]+$")]


class AnthropicMessage(msgspec.Struct, forbid_unknown_fields=True):
    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]


class ToolChoice(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class _Thinking(msgspec.Struct, forbid_unknown_fields=True, tag_field="type"):
    """Extended thinking, told apart by ``type``."""


class ThinkingEnabled(_Thinking, tag="enabled"):
    budget_tokens: Annotated[int, Meta(ge=1024, le=1_000_000)]


class ThinkingDisabled(_Thinking, tag="disabled"):
    pass


class CountedTokens(msgspec.Struct, omit_defaults=True):
    """``count_tokens``' answer (relayed as the model server sends it)."""

    input_tokens: int
    context_management: dict[str, Any] | None = None


class Metadata(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    user_id: Annotated[str, Meta(max_length=256)] | None = None


class _Fields(msgspec.Struct, omit_defaults=True, kw_only=True, forbid_unknown_fields=True):
    model: str
    messages: Annotated[list[AnthropicMessage], Meta(min_length=1, max_length=MAX_MESSAGES)]
    system: str | list[dict[str, Any]] | None = None
    tools: Annotated[list[dict[str, Any]], Meta(max_length=128)] | None = None
    tool_choice: ToolChoice | None = None
    thinking: ThinkingEnabled | ThinkingDisabled | None = None
    output_config: dict[str, Any] | None = None
    mcp_servers: Annotated[
        list[Any] | None,
        Meta(extra_json_schema={"maxItems": 0, "description": "MCP servers are refused."}),
    ] = None
    container: Annotated[Any, only_null("containers")] = None
    context_management: Annotated[
        dict[str, Any] | None, only_null("server-side context management")
    ] = None


class MessagesRequest(_Fields, kw_only=True):
    max_tokens: Annotated[int, Meta(ge=1, le=1_000_000)]
    stream: bool = False
    stop_sequences: (
        Annotated[list[Annotated[str, Meta(min_length=1)]], Meta(max_length=4)] | None
    ) = None
    """Up to 4, as vLLM's Messages API takes them."""
    temperature: Annotated[float, Meta(ge=0.0, le=1.0)] | None = None
    top_p: Annotated[float, Meta(gt=0.0, le=1.0)] | None = None
    top_k: Annotated[int, Meta(ge=0, le=INT32_MAX)] | None = None
    metadata: Metadata | None = None
    service_tier: Literal["auto", "standard_only"] | None = None


class CountTokensRequest(_Fields, kw_only=True):
    """What ``/v1/messages/count_tokens`` takes: a request's prompt, without the sampling."""


def check_supported(request: _Fields) -> None:
    """Raise ``Unsupported`` for what a self-hosted engine cannot do, or cannot take."""
    thinking, limit = request.thinking, getattr(request, "max_tokens", None)
    if (
        isinstance(thinking, ThinkingEnabled)
        and limit is not None
        and thinking.budget_tokens >= limit
    ):
        raise Unsupported("thinking.budget_tokens", "The thinking budget must be less than "
                          "`max_tokens` (the answer comes after the thinking).")  # fmt: skip
    if request.mcp_servers:
        raise Unsupported("mcp_servers", "MCP servers are not supported: give the model "
                          "client tools and run them yourself.")  # fmt: skip
    if request.container is not None:
        raise Unsupported("container", "Containers (code execution) are not supported.")
    if request.context_management is not None:
        raise Unsupported("context_management", "Server-side context management is not "
                          "supported: send the messages you want the model to see.")  # fmt: skip
    for index, tool in enumerate(request.tools or []):
        kind = tool.get("type", "custom")
        if kind != "custom":
            raise Unsupported(f"tools[{index}].type", f"Server tools (`{kind}`) are not "
                              "supported: only client tools with an `input_schema`.")  # fmt: skip
        if not isinstance(tool.get("input_schema"), dict) or not tool.get("name"):
            raise Unsupported(f"tools[{index}]", "A client tool has a `name` and an "
                              "`input_schema` object.")  # fmt: skip

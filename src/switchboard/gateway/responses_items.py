"""The Responses API's ``input`` items, one type per kind of item, as vLLM 0.32 takes them.

OpenAI documents many item types; a self-hosted engine renders five into its chat template:
messages (user, system and developer ones with text or image parts; assistant ones with text or
earlier ``output_text`` parts), function calls, their outputs, and reasoning items. Those are
published (``INPUT_ITEM_SCHEMA``: one schema per type) and checked here field by field, so
whatever the schema allows vLLM accepts; so are item references, which the gateway replaces by
the stored items before relaying (responses/service.py). The rest is a 400 that names the
field: items of hosted or custom tools, file inputs and file ids (there is no Files API),
refusal parts and encrypted reasoning (vLLM cannot render them). The caller's items are relayed
as sent; these types only check them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from switchboard.gateway.protocol import INT32_MAX, integral_floats_as_ints, only_null

Status = Literal["in_progress", "completed", "incomplete"]
Phase = Literal["commentary", "final_answer"]
Index = Annotated[int, Meta(ge=0, le=INT32_MAX)]
Byte = Annotated[int, Meta(ge=0, le=255)]


class _Part(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True, tag_field="type"):
    pass


class InputText(_Part, tag="input_text"):
    text: str


class InputImage(_Part, tag="input_image"):
    """An image by URL or data URL (a model that cannot read images refuses it)."""

    image_url: str
    detail: Literal["low", "high", "auto", "original"] = "auto"
    file_id: Annotated[str | None, only_null("no Files API: send `image_url`")] = None


InputPart = InputText | InputImage


class FileCitation(_Part, tag="file_citation"):
    file_id: str
    filename: str
    index: Index


class UrlCitation(_Part, tag="url_citation"):
    url: str
    title: str
    start_index: Index
    end_index: Index


class ContainerFileCitation(_Part, tag="container_file_citation"):
    container_id: str
    file_id: str
    filename: str
    start_index: Index
    end_index: Index


class FilePath(_Part, tag="file_path"):
    file_id: str
    index: Index


class TopLogprob(msgspec.Struct, forbid_unknown_fields=True):
    token: str
    bytes: list[Byte]
    logprob: float


class Logprob(msgspec.Struct, forbid_unknown_fields=True):
    token: str
    bytes: list[Byte]
    logprob: float
    top_logprobs: list[TopLogprob]


class _Typed(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """A part that is never in a union: its ``type`` is a field (msgspec makes a lone tagged
    struct's tag optional, OpenAI requires it)."""


class OutputText(_Typed):
    """Text the model wrote earlier, as a response's ``output`` holds it."""

    type: Literal["output_text"]
    text: str
    annotations: list[FileCitation | UrlCitation | ContainerFileCitation | FilePath] = []
    logprobs: list[Logprob] | None = None


class SummaryText(_Typed):
    type: Literal["summary_text"]
    text: str


class ReasoningText(_Typed):
    type: Literal["reasoning_text"]
    text: str


class _Item(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    pass


class InputMessageItem(_Item, kw_only=True):
    """A user, system or developer message (``type`` may be left out)."""

    type: Literal["message"] = "message"
    role: Literal["user", "system", "developer"]
    content: str | list[InputPart]
    status: Status | None = None
    phase: Phase | None = None


class AssistantMessageItem(_Item, kw_only=True):
    """An assistant message as text (``type`` may be left out)."""

    type: Literal["message"] = "message"
    role: Literal["assistant"]
    content: str
    phase: Phase | None = None


class OutputMessageItem(_Item, kw_only=True):
    """An assistant message as a response's ``output`` holds it: ``output_text`` parts (the
    model server reads the first one), and ``type`` given (vLLM reads it by its type)."""

    type: Literal["message"]
    role: Literal["assistant"]
    content: Annotated[list[OutputText], Meta(min_length=1)]
    id: str | UnsetType = UNSET
    status: Status | UnsetType = UNSET
    phase: Phase | None = None


class DirectCaller(_Part, tag="direct"):
    pass


class ProgramCaller(_Part, tag="program"):
    caller_id: str


Caller = DirectCaller | ProgramCaller


class FunctionCallItem(_Item, kw_only=True):
    """A function call, as a response's ``output`` holds it (vLLM writes every field, nulls
    included, and a client sends them back)."""

    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str
    """The arguments as JSON text (as the model wrote them)."""
    id: str | None = None
    namespace: str | None = None
    status: Status | None = None
    caller: Caller | None = None
    run_async: bool | None = msgspec.field(default=None, name="async")


class FunctionCallOutputItem(_Item, kw_only=True):
    type: Literal["function_call_output"]
    call_id: str
    output: str | list[InputPart]
    id: str | None = None
    status: Status | None = None
    name: str | None = None
    namespace: str | None = None
    caller: Caller | None = None


class ReasoningItem(_Item, kw_only=True):
    type: Literal["reasoning"]
    summary: list[SummaryText]
    content: list[ReasoningText] | None = None
    id: str | UnsetType = UNSET
    status: Status | None = None
    encrypted_content: Annotated[
        str | None, only_null("vLLM cannot decrypt OpenAI's reasoning: send `content`")
    ] = None


class ItemReference(_Item, kw_only=True):
    """An item of an earlier response (input or output) by its id: the gateway puts the stored
    item in its place."""

    type: Literal["item_reference"]
    id: Annotated[str, Meta(min_length=1, max_length=256)]


INPUT_ITEM_TYPES: tuple[type[msgspec.Struct], ...] = (
    InputMessageItem,
    AssistantMessageItem,
    OutputMessageItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    ReasoningItem,
    ItemReference,
)
"""The published item types; ``openapi.py`` publishes them with the request structs."""
INPUT_ITEM_SCHEMA = {
    "anyOf": [{"$ref": f"#/components/schemas/{kind.__name__}"} for kind in INPUT_ITEM_TYPES]
}
_BY_TYPE: dict[str, type[msgspec.Struct]] = {
    "function_call": FunctionCallItem,
    "function_call_output": FunctionCallOutputItem,
    "reasoning": ReasoningItem,
    "item_reference": ItemReference,
}

_HOSTED = (
    "file_search_call", "computer_call", "computer_call_output", "web_search_call",
    "tool_search_call", "tool_search_output", "additional_tools", "image_generation_call",
    "code_interpreter_call", "local_shell_call", "local_shell_call_output", "shell_call",
    "shell_call_output", "apply_patch_call", "apply_patch_call_output", "mcp_list_tools",
    "mcp_approval_request", "mcp_approval_response", "mcp_call", "program", "program_output",
)  # fmt: skip
REFUSED_ITEMS: dict[str, str] = {
    **{kind: f"Items of hosted tools (`{kind}`) are not supported: only `function_call` and "
       "`function_call_output` items." for kind in _HOSTED},
    "custom_tool_call": "Custom tool calls (`custom_tool_call`) are not supported: only "
                        "`function` tools.",
    "custom_tool_call_output": "Custom tool outputs (`custom_tool_call_output`) are not "
                               "supported: only `function` tools.",
    "compaction": "Compaction items (`compaction`) are not supported: send the items.",
    "compaction_trigger": "Compaction (`compaction_trigger`) is not supported.",
    "configuration_update": "Configuration updates (`configuration_update`) are not supported.",
}  # fmt: skip
"""Item types OpenAI documents that no self-hosted engine can serve: each named in the 400."""
REFUSED_PARTS: dict[str, str] = {
    "input_file": "File inputs (`input_file`) are not supported: send the file's text as "
                  "`input_text`.",
    "refusal": "Refusal parts (`refusal`) cannot be sent back to the model server: send "
               "the refusal's text as `output_text`.",
}  # fmt: skip


class Unsupported(ValueError):
    """A field the gateway cannot serve: its path and why."""

    def __init__(self, param: str, why: str) -> None:
        super().__init__(why)
        self.param = param


def check_items(items: list[Any]) -> None:
    """Check each item against its type: ``Unsupported`` for what cannot be served,
    ``msgspec.ValidationError`` (its path from ``input``) for what is not valid."""
    for index, item in enumerate(items):
        where = f"input[{index}]"
        kind = item.get("type", "message") if isinstance(item, dict) else None
        if isinstance(kind, str) and kind in REFUSED_ITEMS:
            raise Unsupported(f"{where}.type", REFUSED_ITEMS[kind])
        struct: type[msgspec.Struct]
        if kind == "message" and item.get("role") == "assistant":
            listed = isinstance(item.get("content"), list)
            struct = OutputMessageItem if listed else AssistantMessageItem
        elif kind == "message":
            struct = InputMessageItem
        elif isinstance(kind, str) and kind in _BY_TYPE:
            struct = _BY_TYPE[kind]
        else:
            accepted = ", ".join(f"`{name}`" for name in ("message", *_BY_TYPE))
            shown = "an item that is not an object" if kind is None else repr(kind)
            raise msgspec.ValidationError(
                f"Expected an item of type {accepted}, got {shown} - at `$.{where}.type`"
            )
        _refuse_parts(item, where)
        try:
            msgspec.convert(integral_floats_as_ints(item), struct)
        except msgspec.ValidationError as exc:
            text, _, path = str(exc).rpartition(" - at `$")
            raise msgspec.ValidationError(
                f"{text} - at `$.{where}{path}" if text else f"{exc} - at `$.{where}`"
            ) from None


def _refuse_parts(item: dict[str, Any], where: str) -> None:
    """What the item's own type allows but the model server cannot take."""
    if item.get("encrypted_content") is not None and item.get("type") == "reasoning":
        why = "Encrypted reasoning (`encrypted_content`) is not supported: send its `content`."
        raise Unsupported(f"{where}.encrypted_content", why)
    for field in ("content", "output"):
        parts = item.get(field)
        for number, part in enumerate(parts if isinstance(parts, list) else []):
            kind = part.get("type") if isinstance(part, dict) else None
            path = f"{where}.{field}[{number}]"
            if isinstance(kind, str) and kind in REFUSED_PARTS:
                raise Unsupported(f"{path}.type", REFUSED_PARTS[kind])
            if kind == "input_image" and part.get("file_id") is not None:
                raise Unsupported(f"{path}.file_id", "File ids (`file_id`) are not supported "
                                  "(there is no Files API): send `image_url`.")  # fmt: skip

"""OpenAI wire types (msgspec) of the requests ``/v1`` takes (parsing.py validates bodies).

Every field of OpenAI's published API for the endpoint is accepted and checked (type and range),
then relayed where the engine supports it, dropped where it has no meaning here, or refused with
a 400 naming it where it asks for what no self-hosted engine does (docs/api.md has the table;
shaping.py applies it). The vLLM sampling extras people rely on (``top_k``, ``min_p``,
``repetition_penalty`` ...) are accepted too. Engine internals that would bypass the gateway's
controls (``kv_transfer_params``, ``vllm_xargs``, ``priority``, ``request_id``, ``chat_template``,
``logits_processors`` ...) are unknown fields: a 400 that names each (ADR 0010).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

Temperature = Annotated[float, Meta(ge=0.0, le=2.0, description="Sampling temperature, 0 to 2.")]
TopP = Annotated[float, Meta(gt=0.0, le=1.0)]
Penalty = Annotated[float, Meta(ge=-2.0, le=2.0)]
MaxTokens = Annotated[
    int,
    Meta(ge=1, le=1_000_000, description="Upper bound on generated tokens (the model's context "
         "length bounds it too)."),
]  # fmt: skip
Choices = Annotated[int, Meta(ge=1, le=16)]
StopText = Annotated[str, Meta(min_length=1)]
Stop = StopText | Annotated[list[StopText], Meta(max_length=4)]
Seed = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
MAX_MESSAGES = 256


def only_null(why: str) -> Meta:
    """Publishes a field the gateway accepts only as null (OpenAI's SDKs may send it so): the
    schema says so, and any other value is refused by name with ``why``."""
    return Meta(extra_json_schema={
        "type": "null",
        "description": f"Not supported here ({why}): null or absent; any other value is "
        "refused with `unsupported_parameter`.",
    })  # fmt: skip


def integral_floats_as_ints(value: Any) -> Any:
    """JSON Schema counts 5.0 as an integer; msgspec's strict mode does not: 5.0 becomes 5."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: integral_floats_as_ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [integral_floats_as_ints(item) for item in value]
    return value


INT32_MAX = 2**31 - 1
"""vLLM's sampler holds token ids and ``top_k`` in 32-bit integers: larger values are refused
here rather than overflowing there."""
TokenId = Annotated[int, Meta(ge=0, le=INT32_MAX)]
MAX_TOKEN_LIST = 1024


class StreamOptions(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    include_usage: bool = False
    continuous_usage_stats: bool = False
    include_obfuscation: bool | None = None
    """OpenAI's padding against length side channels: dropped (this gateway adds none)."""


class _Part(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True, tag_field="type"):
    """The parts of a multi-part message, told apart by ``type``, as in OpenAI's API."""


class TextPart(_Part, tag="text"):
    text: str


class ImageUrl(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    url: Annotated[str, Meta(min_length=1)]
    detail: Literal["auto", "low", "high", "original"] = "auto"
    """Not null: vLLM refuses a null detail."""


class ImagePart(_Part, tag="image_url"):
    """Relayed: a vision model answers it, a text model refuses it (its 400 is relayed)."""

    image_url: ImageUrl


class InputAudio(msgspec.Struct, forbid_unknown_fields=True):
    data: str
    format: Literal["wav", "mp3"]


class AudioPart(_Part, tag="input_audio"):
    input_audio: InputAudio


class FileContent(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    file_data: str | None = None
    file_id: str | None = None
    filename: str | None = None


class FilePart(_Part, tag="file"):
    file: FileContent


class RefusalPart(_Part, tag="refusal"):
    refusal: str


Part = TextPart | ImagePart | AudioPart | FilePart | RefusalPart


class FunctionCall(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    arguments: str
    """JSON text of the arguments, as the model produced it."""


class ToolCall(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    type: Literal["function"]
    function: FunctionCall


Content = str | list[Part]


class _Message(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True, tag_field="role"):
    """Chat messages are told apart by ``role``, each with its own fields, as in OpenAI's API."""


class SystemMessage(_Message, tag="system"):
    content: Content
    name: str | None = None


class DeveloperMessage(_Message, tag="developer"):
    content: Content
    name: str | None = None


class UserMessage(_Message, tag="user"):
    content: Content
    name: str | None = None


class AssistantMessage(_Message, tag="assistant"):
    content: Content | None = None
    """May be null when the message only carries tool calls."""
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    refusal: str | None = None
    reasoning_content: str | None = None
    function_call: FunctionCall | None = None
    """The legacy single call (relayed as ``tool_calls``)."""
    # What vLLM's answer carries as null and SDKs send back with the message in an agent loop
    # (null fields are not relayed).
    audio: dict[str, Any] | None = None
    annotations: list[dict[str, Any]] | None = None


class ToolMessage(_Message, tag="tool"):
    content: Content
    tool_call_id: str
    """Which tool call this message answers."""


class FunctionMessage(_Message, tag="function"):
    """OpenAI's legacy answer to a ``function_call`` (relayed as a ``tool`` message)."""

    content: str | None
    name: str


ChatMessage = (
    SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage
    | FunctionMessage
)  # fmt: skip


class JsonSchemaFormat(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=64, pattern="^[A-Za-z0-9_-]+$")]
    schema: dict[str, Any]
    """The JSON Schema the answer must match."""
    description: str | None = None
    strict: bool | None = None


class _ResponseFormat(msgspec.Struct, forbid_unknown_fields=True, tag_field="type"):
    """How the answer is shaped, told apart by ``type`` as in OpenAI's API."""


class TextFormat(_ResponseFormat, tag="text"):
    """Free text (the default)."""


class JsonObjectFormat(_ResponseFormat, tag="json_object"):
    """Any JSON object."""


class JsonSchemaResponseFormat(_ResponseFormat, tag="json_schema"):
    """JSON that matches ``json_schema.schema``."""

    json_schema: JsonSchemaFormat


ResponseFormat = TextFormat | JsonObjectFormat | JsonSchemaResponseFormat


class FunctionDefinition(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=64, pattern="^[A-Za-z0-9_-]+$")]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(msgspec.Struct, forbid_unknown_fields=True):
    type: Literal["function", "custom"]
    """``custom`` tools (free-form input) are refused: vLLM calls functions only."""
    function: FunctionDefinition | None = None
    custom: dict[str, Any] | None = None


class FunctionName(msgspec.Struct, forbid_unknown_fields=True):
    name: str


class _ToolChoice(msgspec.Struct, forbid_unknown_fields=True, tag_field="type"):
    """A tool choice beyond the modes, told apart by ``type``."""


class NamedToolChoice(_ToolChoice, tag="function"):
    function: FunctionName


class AllowedTools(_ToolChoice, tag="allowed_tools"):
    """Refused (vLLM takes one choice or a mode)."""

    allowed_tools: dict[str, Any]


LegacyFunctionCall = Literal["none", "auto"] | FunctionName
Metadata = Annotated[
    dict[Annotated[str, Meta(max_length=64)], Annotated[str, Meta(max_length=512)]],
    Meta(max_length=16),
]
Modality = Annotated[
    Literal["text", "audio"],
    Meta(extra_json_schema={"const": "text", "description": "Audio output is refused."}),
]


class ChatTemplateKwargs(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """The chat template's switches that only change what the model is asked: a template, its
    tokenization or the generation prompt are the gateway's to decide, never the caller's."""

    enable_thinking: bool | None = None
    """Qwen3-style reasoning on or off."""
    thinking: bool | None = None
    """DeepSeek/Granite-style reasoning on or off."""
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None
    """gpt-oss-style reasoning effort."""


class SamplingFields(msgspec.Struct, omit_defaults=True, kw_only=True, forbid_unknown_fields=True):
    """Sampling fields shared by chat and text completions: OpenAI's, then vLLM's extras.

    The complete list of what is relayed (docs/api.md lists it too); anything else is refused.
    """

    model: str
    max_tokens: MaxTokens | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    n: Choices | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: Stop | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    seed: Seed | None = None
    user: str | None = None
    # OpenAI's, with no meaning here: checked, then dropped (docs/api.md)
    metadata: Metadata | None = None
    service_tier: Literal["auto", "default", "flex", "scale", "priority", "fast"] | None = None
    store: bool | None = None
    safety_identifier: Annotated[str, Meta(max_length=256)] | None = None
    prompt_cache_key: Annotated[str, Meta(max_length=1024)] | None = None
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    prompt_cache_options: dict[str, Any] | None = None
    # vLLM extensions
    top_k: Annotated[int, Meta(ge=-1, le=INT32_MAX)] | None = None
    min_p: Annotated[float, Meta(ge=0.0, le=1.0)] | None = None
    repetition_penalty: Annotated[float, Meta(gt=0.0, le=2.0)] | None = None
    ignore_eos: bool | None = None
    skip_special_tokens: bool | None = None
    spaces_between_special_tokens: bool | None = None
    min_tokens: Annotated[int, Meta(ge=0, le=1_000_000)] | None = None
    stop_token_ids: Annotated[list[TokenId], Meta(max_length=MAX_TOKEN_LIST)] | None = None
    include_stop_str_in_output: bool | None = None
    bad_words: Annotated[list[StopText], Meta(max_length=MAX_TOKEN_LIST)] | None = None
    logit_bias: (
        Annotated[
            dict[TokenId, Annotated[float, Meta(ge=-100.0, le=100.0)]],
            Meta(max_length=MAX_TOKEN_LIST),
        ]
        | None
    ) = None
    """Token id (as a JSON key: a decimal string) → bias."""
    response_format: ResponseFormat | None = None


class ChatCompletionRequest(SamplingFields, omit_defaults=True, kw_only=True):
    messages: Annotated[list[ChatMessage], Meta(min_length=1, max_length=MAX_MESSAGES)]
    max_completion_tokens: MaxTokens | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | None = None
    tools: Annotated[list[Tool], Meta(max_length=128)] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | AllowedTools | None = None
    parallel_tool_calls: bool | None = None
    functions: Annotated[list[FunctionDefinition], Meta(max_length=128)] | None = None
    """The legacy form of ``tools`` (relayed as function tools)."""
    function_call: LegacyFunctionCall | None = None
    """The legacy form of ``tool_choice``."""
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    verbosity: Literal["low", "medium", "high"] | None = None
    prediction: dict[str, Any] | None = None
    modalities: Annotated[list[Modality], Meta(max_length=2)] | None = None
    audio: Annotated[dict[str, Any] | None, only_null("audio output")] = None
    web_search_options: Annotated[dict[str, Any] | None, only_null("web search")] = None
    moderation: Annotated[dict[str, Any] | None, only_null("moderation")] = None
    # vLLM extensions for chat templates
    chat_template_kwargs: ChatTemplateKwargs | None = None
    add_generation_prompt: bool | None = None
    continue_final_message: bool | None = None


PromptText = Annotated[str, Meta(min_length=1)]
_TOKEN_ID = {"type": "integer", "minimum": 0, "maximum": INT32_MAX}
PROMPT_LIST_SHAPES = {
    "anyOf": [
        {"items": {"type": "string", "minLength": 1}, "maxItems": 16},
        {"items": _TOKEN_ID},
        {"items": {"type": "array", "items": _TOKEN_ID, "minItems": 1}, "maxItems": 16},
    ],
    "description": "Up to 16 texts, token ids, or up to 16 lists of token ids.",
}
"""What ``contract.py`` accepts of a list prompt (msgspec takes one list type in a union)."""


MAX_PROMPTS = 16
MAX_PROMPT_TOKENS = 1_000_000


class CompletionRequest(SamplingFields, omit_defaults=True, kw_only=True):
    prompt: (
        PromptText
        | Annotated[
            list[Any],
            Meta(min_length=1, max_length=MAX_PROMPT_TOKENS, extra_json_schema=PROMPT_LIST_SHAPES),
        ]
    )
    """A text, up to 16 texts, token ids, or up to 16 lists of token ids (contract.py checks
    the list: msgspec takes one list type in a union)."""
    best_of: Choices | None = None
    """Accepted up to ``n`` (every candidate is returned); more is refused: vLLM no longer
    picks the best of several."""
    echo: bool | None = None
    logprobs: Annotated[int, Meta(ge=0, le=20)] | None = None
    suffix: str | None = None
    """Relayed: a fill-in-the-middle model uses it, another refuses it."""

"""OpenAI wire types (msgspec) for what crosses ``/v1`` (parsing.py validates bodies with them).

Requests are an explicit allow-list: OpenAI's fields (structured output through
``response_format``, tools) plus the vLLM sampling extras people rely on (``top_k``, ``min_p``,
``repetition_penalty`` ...). Any other field is a 400
that names it, so engine internals (``kv_transfer_params``, ``vllm_xargs``, ``priority``,
``request_id``, ``prompt_logprobs``, ``chat_template``, ``logits_processors`` ...) never reach the
model server. A valid request is relayed as the client's own JSON object. Responses from the model
server are relayed as they come; the response structs document the shape for the OpenAPI schema
and type our own answers (cache hits, errors).
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
Seed = Annotated[int, Meta(ge=0, le=2**63 - 1)]
MAX_MESSAGES = 256
INT32_MAX = 2**31 - 1
"""vLLM's sampler holds token ids and ``top_k`` in 32-bit integers: larger values are refused
here rather than overflowing there."""
TokenId = Annotated[int, Meta(ge=0, le=INT32_MAX)]
MAX_TOKEN_LIST = 1024


class StreamOptions(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    include_usage: bool = False
    continuous_usage_stats: bool = False


class TextPart(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """A text part of a multi-part message."""

    type: Literal["text"]
    text: str


class FunctionCall(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    arguments: str
    """JSON text of the arguments, as the model produced it."""


class ToolCall(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    type: Literal["function"]
    function: FunctionCall


Content = str | list[TextPart]


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
    # What vLLM's answer carries as null and SDKs send back with the message in an agent loop
    # (null fields are not relayed); only null is accepted.
    function_call: None = None
    audio: None = None
    annotations: None = None


class ToolMessage(_Message, tag="tool"):
    content: Content
    tool_call_id: str
    """Which tool call this message answers."""


ChatMessage = SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage


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
    type: Literal["function"]
    function: FunctionDefinition


class FunctionName(msgspec.Struct, forbid_unknown_fields=True):
    name: str


class NamedToolChoice(msgspec.Struct, forbid_unknown_fields=True):
    type: Literal["function"]
    function: FunctionName


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
    tools: Annotated[list[Tool], Meta(min_length=1, max_length=128)] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    # vLLM extensions for chat templates
    chat_template_kwargs: ChatTemplateKwargs | None = None
    add_generation_prompt: bool | None = None
    continue_final_message: bool | None = None


PromptText = Annotated[str, Meta(min_length=1)]


class CompletionRequest(SamplingFields, omit_defaults=True, kw_only=True):
    prompt: PromptText | Annotated[list[PromptText], Meta(min_length=1, max_length=16)]
    echo: bool | None = None
    logprobs: Annotated[int, Meta(ge=0, le=20)] | None = None


class Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ResponseMessage(msgspec.Struct, omit_defaults=True):
    role: str = "assistant"
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class ChatChoice(msgspec.Struct):
    index: int
    message: ResponseMessage
    finish_reason: str | None = None
    logprobs: dict[str, Any] | None = None


class ChatCompletionResponse(msgspec.Struct):
    id: str
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage | None = None
    object: str = "chat.completion"
    system_fingerprint: str | None = None


class DeltaMessage(msgspec.Struct, omit_defaults=True):
    role: str | None = None
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class ChatChunkChoice(msgspec.Struct):
    index: int
    delta: DeltaMessage
    finish_reason: str | None = None
    logprobs: dict[str, Any] | None = None


class ChatCompletionChunk(msgspec.Struct):
    """One ``data:`` event of a streamed chat completion."""

    id: str
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None
    object: str = "chat.completion.chunk"


class CompletionChoice(msgspec.Struct):
    index: int
    text: str
    finish_reason: str | None = None
    logprobs: dict[str, Any] | None = None


class CompletionResponse(msgspec.Struct):
    id: str
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    object: str = "text_completion"


class ModelCard(msgspec.Struct):
    id: str
    created: int
    owned_by: str = "switchboard"
    object: str = "model"
    max_model_len: int | None = None


class ModelList(msgspec.Struct):
    data: list[ModelCard]
    object: str = "list"


class ErrorBody(msgspec.Struct):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(msgspec.Struct):
    """OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}``."""

    error: ErrorBody

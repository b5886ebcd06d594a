"""A reply streaming into the page: the gateway service in process, SSE out to htmx.

Events: ``delta`` (escaped text to append) and, last, ``done`` (the finished message rendered
from Markdown). Stop sets the message to ``stopping`` in the database (so it works whichever
worker serves the stream); the stream checks it a few times a second, closes the upstream request
and keeps the partial answer marked as stopped. A closed page does the same.
"""

from __future__ import annotations

import asyncio
import html
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec

from switchboard.accounts.tables import User
from switchboard.chat.services import finish_message, is_stopping, messages_of
from switchboard.chat.tables import Conversation, Message
from switchboard.gateway.errors import GatewayError
from switchboard.gateway.protocol import (
    AssistantMessage,
    ChatCompletionRequest,
    StreamOptions,
    SystemMessage,
    UserMessage,
)
from switchboard.gateway.relay import event_data
from switchboard.gateway.service import Caller, GatewayService, ParsedRequest

STOP_CHECK_SECONDS = 0.25


class _Delta(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    delta: _Delta = msgspec.field(default_factory=_Delta)


class _Chunk(msgspec.Struct):
    choices: list[_Choice] = []


def sse(event: str, payload: str) -> bytes:
    lines = "".join(f"data: {line}\n" for line in payload.split("\n"))
    return f"event: {event}\n{lines}\n".encode()


def build_request(conversation: Conversation, history: list[Message], model: str) -> ParsedRequest:
    messages: list[Any] = []
    if conversation.system_prompt.strip():
        messages.append(SystemMessage(content=conversation.system_prompt))
    for message in history:
        if message.role == "user":
            messages.append(UserMessage(content=message.content))
        elif message.role == "assistant" and message.content and message.status != "streaming":
            messages.append(AssistantMessage(content=message.content))
    request = ChatCompletionRequest(
        model=conversation.model or model,
        messages=messages,
        temperature=conversation.temperature,
        max_tokens=conversation.max_tokens,
        stream=True,
        stream_options=StreamOptions(include_usage=True),
    )
    return ParsedRequest("chat", request, msgspec.to_builtins(request))


async def stream_reply(
    gateway: GatewayService,
    user: User,
    conversation: Conversation,
    message_id: int,
    render_done: Callable[[int], Any],
    request_id: str = "",
) -> AsyncIterator[bytes]:
    """Generate the reply to the conversation into message ``message_id``, as SSE events."""
    history = [m for m in await messages_of(conversation.id) if m.id != message_id]
    parsed = build_request(conversation, history, gateway.settings.default_model)
    caller = Caller(
        user_id=int(user.id), key_id=None, rpm=user.default_rpm, tpm=user.default_tpm,
        source="web", request_id=request_id,
    )  # fmt: skip
    pieces: list[str] = []
    status, error = "complete", ""
    try:
        completion = await gateway.complete(parsed, caller)
    except GatewayError as exc:
        reference = f" (request id {request_id})" if request_id else ""
        await finish_message(message_id, "", "error", exc.message + reference)
        yield sse("done", await render_done(message_id))
        return
    assert completion.events is not None
    checked = time.monotonic()
    try:
        async for event in completion.events:
            data = event_data(event)
            if data is None or data == b"[DONE]":
                continue
            chunk = msgspec.json.decode(data, type=_Chunk)
            if chunk.choices and chunk.choices[0].delta.content:
                piece = chunk.choices[0].delta.content
                pieces.append(piece)
                yield sse("delta", html.escape(piece))
            if time.monotonic() - checked > STOP_CHECK_SECONDS:
                checked = time.monotonic()
                if await is_stopping(message_id):
                    status = "stopped"
                    break
    except (asyncio.CancelledError, GeneratorExit):
        status = "stopped"  # the page went away: keep what was generated
        raise
    except Exception as exc:
        status, error = "error", f"The answer broke off: {exc}"
    finally:
        await completion.events.aclose()  # type: ignore[attr-defined]  # closes the upstream
        await finish_message(
            message_id, "".join(pieces), status, error, completion.outcome.usage.completion_tokens
        )
    yield sse("done", await render_done(message_id))

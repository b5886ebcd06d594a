"""A reply streaming into the page: the gateway service in process, SSE out to htmx.

Events: ``partial`` (the answer so far, rendered from Markdown on the server at most every
``RENDER_SECONDS``: it replaces the message body) and, last, ``done`` (the finished message as
stored, rendered from Markdown, with its actions and the conversation's title as out-of-band
swaps). The service yields typed items (gateway/chunks.py); nothing here parses SSE.
Exactly one request generates a reply: the one that claimed it (services.claim); any other
request for the same message (a reload, a reconnect) waits for it to finish and shows it. Stop
sets the message to ``stopping`` in the database (so it works whichever worker serves the
stream); the stream checks it a few times a second, closes the upstream request and keeps the
partial answer marked as stopped. A closed page does the same. A stream that fails keeps what
was generated, marked as failed with the reason shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec

from switchboard.chat.markdown import render_markdown
from switchboard.chat.quotas import ChatQuotas
from switchboard.chat.services import (
    LIVE,
    finish_message,
    is_stopping,
    messages_of,
    retry_at_of,
    status_of,
)
from switchboard.chat.tables import Conversation, Message
from switchboard.chat.titles import title_after_first_answer
from switchboard.gateway.accounting import Caller
from switchboard.gateway.chunks import Chunk, StreamDone, StreamFailed
from switchboard.gateway.errors import GatewayError
from switchboard.gateway.parsing import ParsedRequest
from switchboard.gateway.protocol import (
    AssistantMessage,
    ChatCompletionRequest,
    StreamOptions,
    SystemMessage,
    UserMessage,
)
from switchboard.gateway.service import GatewayService

if TYPE_CHECKING:
    from switchboard.accounts.tables import User

STOP_CHECK_SECONDS = 0.25
RENDER_SECONDS = 0.25
"""The partial answer is rendered again at most this often (the first piece at once)."""
RenderDone = Callable[[int], Awaitable[str]]


LINE_BREAK = re.compile(r"\r\n|\r|\n")
"""What ends a line of an event stream (WHATWG HTML, 9.2.6): CRLF, LF or CR alike."""


def sse(event: str, payload: str) -> bytes:
    """One event whose data is ``payload``, whatever line breaks it holds: every line of it
    gets its own ``data:`` field, so none can end the event or start a field of its own. The
    browser joins them with LF (HTML treats CR, CRLF and LF alike)."""
    lines = "".join(f"data: {line}\n" for line in LINE_BREAK.split(payload))
    return f"event: {event}\n{lines}\n".encode()


def build_request(conversation: Conversation, history: list[Message], model: str) -> ParsedRequest:
    messages: list[Any] = []
    if conversation.system_prompt.strip():
        messages.append(SystemMessage(content=conversation.system_prompt))
    for message in history:
        if message.role == "user":
            messages.append(UserMessage(content=message.content))
        elif message.role == "assistant" and message.content and message.status not in LIVE:
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
    render_done: RenderDone,
    request_id: str = "",
) -> AsyncIterator[bytes]:
    """Generate the reply into message ``message_id`` (claimed by the caller), as SSE events."""
    history = [m for m in await messages_of(conversation.id) if m.id != message_id]
    parsed = build_request(conversation, history, gateway.settings.default_model)
    caller = Caller(
        user_id=int(user.id),
        key_id=None,
        rpm=user.default_rpm,
        tpm=user.default_tpm,
        source="web",
        request_id=request_id,
    )
    reference = f" (request id {request_id})" if request_id else ""
    try:
        completion = await gateway.complete(parsed, caller)
    except GatewayError as exc:  # shown in place: model down (retry), rate limited (when)
        retry_at = retry_at_of(exc.headers)
        await finish_message(
            message_id,
            "",
            "error",
            exc.message + reference,
            error_status=exc.status,
            retry_at=retry_at,
        )
        yield sse("done", await render_done(message_id))
        return
    assert completion.events is not None
    pieces: list[str] = []
    status, error = "error", "The answer broke off before it was complete." + reference
    failure: GatewayError | None = None
    checked = time.monotonic()
    rendered = 0.0  # when the partial answer was last sent
    try:
        async with contextlib.aclosing(completion.events) as batches:  # closes the upstream
            async for batch in batches:
                grew = False
                for item in batch:
                    if isinstance(item, Chunk) and item.text:
                        pieces.append(item.text)
                        grew = True
                    elif isinstance(item, StreamFailed):
                        error = item.error.message + reference
                        failure = item.error
                    elif isinstance(item, StreamDone):
                        status, error = "complete", ""
                if grew and time.monotonic() - rendered >= RENDER_SECONDS:
                    rendered = time.monotonic()
                    yield sse("partial", render_markdown("".join(pieces)))
                if time.monotonic() - checked > STOP_CHECK_SECONDS:
                    checked = time.monotonic()
                    if await is_stopping(message_id):
                        status, error = "stopped", ""
                        break
    except (asyncio.CancelledError, GeneratorExit):
        status, error = "stopped", ""  # the page went away: keep what was generated
        raise
    finally:
        tokens = completion.outcome.usage.completion_tokens
        await finish_message(
            message_id,
            "".join(pieces),
            status,
            error,
            tokens,
            error_status=failure.status if failure and status == "error" else 0,
        )
    if status == "complete":  # the title arrives with the answer's ``done`` event
        await title_after_first_answer(gateway, caller, conversation)
    yield sse("done", await render_done(message_id))


async def follow_reply(
    message_id: int, render_done: RenderDone, patience: float
) -> AsyncGenerator[bytes, None]:
    """Another request generates this reply: wait for it to end, then show it (never start a
    second generation)."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:  # the generator may be another worker: ask the database
        if await status_of(message_id) not in LIVE:
            break
        await asyncio.sleep(STOP_CHECK_SECONDS)
    yield sse("done", await render_done(message_id))


async def within_quota(
    quotas: ChatQuotas,
    user_id: int,
    events: AsyncGenerator[bytes, None],
    render_refused: Callable[[], Awaitable[str]],
) -> AsyncIterator[bytes]:
    """``events`` of a follower stream while ``user_id`` holds one of their places (each polls
    the database); beyond them, one ``done`` event with the notice (which the page shows in
    place of the answer, and which closes the stream: no reconnection)."""
    async with quotas.following(user_id) as admitted:
        if not admitted:
            yield sse("done", await render_refused())
            return
        async with contextlib.aclosing(events) as followed:
            async for event in followed:
                yield event

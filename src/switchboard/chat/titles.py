"""A conversation's title, written by the model after its first answer.

Until then a conversation is named after its first message (``services.title_from``, the
provisional title). Once the first answer is complete, one small request asks the model for a
short title: through the gateway service in process, as the chat's own requests, so it counts
in the person's usage, limits and budget like any chat request (``source="web"``, its own
request id: the chat's with ``-title``). It is not streamed, at temperature 0 (so the response
cache may answer it) and at most ``MAX_TOKENS`` long. What comes back is cleaned (``clean_title``)
and stored only while the provisional title is still there: a rename made meanwhile wins. A
failure (the model down, a limit reached, nothing usable) keeps the provisional title, silently.
"""

from __future__ import annotations

import dataclasses
import logging
import re

import msgspec

from switchboard.chat.services import clean, messages_of, title_from
from switchboard.chat.tables import Conversation
from switchboard.gateway.accounting import Caller
from switchboard.gateway.answers import ChatCompletionResponse
from switchboard.gateway.errors import GatewayError
from switchboard.gateway.parsing import ParsedRequest
from switchboard.gateway.protocol import ChatCompletionRequest, SystemMessage, UserMessage
from switchboard.gateway.service import GatewayService

log = logging.getLogger(__name__)

MAX_TOKENS = 20
"""Enough for a title of a few words; a model that rambles is cut (and its first line kept)."""
MAX_CHARS = 60
"""A longer title is cut at a word boundary."""
QUESTION_CHARS = 1000
"""How much of the first message the model reads (the start says what it is about)."""
INSTRUCTION = (
    "Write a short title, three to six words, for a conversation that starts with the message "
    "above. Reply with the title only: no quotes, no explanation."
)
SYSTEM = "You name conversations with short, plain titles."
DASHES = "\u2013\u2014"  # en and em dash
PREFIX = re.compile(
    rf"^(?:conversation\s+)?(?:title|topic|subject)\s*[:\-{DASHES}]\s*", re.IGNORECASE
)
BULLET = re.compile(r"^(?:[#>*\-•]+|\d+[.)])\s+")
QUOTES = '"“”„«»`'
EDGES = " \t'\u2018\u2019*_#~" + QUOTES
TRAILING = ".,:;-" + DASHES


def clean_title(text: str, limit: int = MAX_CHARS) -> str:
    """What the model wrote as a title: its first non-empty line, without Markdown marks,
    quotes, a ``Title:`` label or a closing full stop, on one line, at most ``limit``
    characters (cut at a word). ``""`` when nothing is left."""
    for raw in clean(text).splitlines():
        line = " ".join(raw.split())
        line = BULLET.sub("", line).strip(EDGES)
        line = PREFIX.sub("", line)
        line = line.translate({ord(q): None for q in QUOTES}).strip(EDGES)
        line = line.rstrip(TRAILING + EDGES).strip()
        if line:
            break
    else:
        return ""
    if len(line) > limit:
        cut = line[: limit + 1].rsplit(" ", 1)[0] if " " in line[: limit + 1] else line[:limit]
        line = cut[:limit].rstrip(TRAILING + EDGES).strip()
    return line


def title_request(question: str, model: str) -> ParsedRequest:
    """The model's task: the first message, then the instruction (small models follow the last
    thing they read)."""
    request = ChatCompletionRequest(
        model=model,
        messages=[
            SystemMessage(content=SYSTEM),
            UserMessage(content=f"{question[:QUESTION_CHARS]}\n\n---\n{INSTRUCTION}"),
        ],
        temperature=0.0,
        max_tokens=MAX_TOKENS,
        stream=False,
    )
    return ParsedRequest("chat", request, msgspec.to_builtins(request))


async def title_after_first_answer(
    gateway: GatewayService, caller: Caller, conversation: Conversation
) -> str | None:
    """Ask the model for ``conversation``'s title if its first answer just completed and it
    still has its provisional title; store it. The new title, or ``None`` (nothing changed)."""
    if not gateway.settings.chat_titles:
        return None
    asked = [m for m in await messages_of(int(conversation.id)) if m.role == "user"]
    if len(asked) != 1:
        return None  # not the first exchange (or an imported conversation)
    provisional = title_from(asked[0].content)
    stored = (
        await Conversation.select(Conversation.title)
        .where(Conversation.id == conversation.id)
        .first()
    )
    if stored is None or stored["title"] != provisional:
        return None  # renamed, or already titled
    model = conversation.model or gateway.settings.default_model
    own = dataclasses.replace(caller, request_id=caller.request_id and f"{caller.request_id}-title")
    try:
        completion = await gateway.complete(title_request(asked[0].content, model), own)
        answer = msgspec.json.decode(completion.body or b"", type=ChatCompletionResponse)
    except (GatewayError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        log.info(
            "no title from the model",
            extra={"request_id": own.request_id, "error": f"{type(exc).__name__}: {exc}"[:200]},
        )
        return None
    choice = answer.choices[0] if answer.choices else None
    content = (choice.message.content or "") if choice else ""
    if choice and choice.finish_reason == "length" and "\n" not in content.strip():
        content = content.strip().rsplit(" ", 1)[0]  # cut mid-title: drop the unfinished word
    title = clean_title(content)
    if not title or title == provisional:
        return None
    changed = (
        await Conversation.update({Conversation.title: title})
        .where((Conversation.id == conversation.id) & (Conversation.title == provisional))
        .returning(Conversation.id)
    )
    if not changed:
        return None  # renamed while the model was writing
    conversation.title = title
    return title

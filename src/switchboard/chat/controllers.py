"""The conversation page: messages streaming in, stop, settings, regenerate and edit.

The list (search, pin, archive, rename, delete) is in history_controllers.py, export and import
in transfer_controllers.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect, Stream, Template
from msgspec import Meta

from switchboard.accounts.guards import requires_user
from switchboard.chat import projects, services
from switchboard.chat.generations import STOP_PATIENCE, Generation, Generations
from switchboard.chat.quotas import ChatQuotas
from switchboard.chat.streaming import follow_elsewhere, follow_reply, generate, within_quota
from switchboard.chat.tables import Conversation, Message
from switchboard.chat.views import (
    TEMPLATE,
    conversation_of,
    message_view,
    model_names,
    page_context,
    user_of,
)
from switchboard.gateway.service import GatewayService
from switchboard.settings import Settings
from switchboard.web.htmx import htmx_of
from switchboard.web.inputs import MAX_ID
from switchboard.web.rendering import page, render_block
from switchboard.web.request_id import request_id_of

if TYPE_CHECKING:
    from switchboard.accounts.tables import User


FOLLOWERS_REFUSED = (
    "This answer is still being written, and you already have {limit} pages waiting for "
    "answers like this one. Close some tabs or windows, then reload this page to see it."
)


class MessageForm(msgspec.Struct):
    content: str = ""
    model: str | None = None
    """From the composer's model picker ("" is the default model); absent: unchanged."""
    project: Annotated[int, Meta(ge=1, le=MAX_ID)] | None = None
    """The project a first message starts its conversation in (a project page's message box)."""


class SettingsForm(msgspec.Struct):
    system_prompt: str = ""
    model: str = ""
    temperature: str = "0.7"
    max_tokens: str = "512"


def _settings_errors(
    data: SettingsForm, models: list[str], max_len: int
) -> tuple[dict[str, Any], list[str]]:
    errors: list[str] = []
    system_prompt = data.system_prompt.strip()[: services.MAX_SYSTEM_PROMPT_CHARS]
    changes: dict[str, Any] = {"system_prompt": system_prompt}
    if data.model and data.model not in models:
        errors.append(f"Unknown model {data.model[: services.MAX_MODEL_CHARS]!r}.")
    changes["model"] = data.model
    low, high = services.TEMPERATURE_RANGE
    try:
        changes["temperature"] = float(data.temperature)
        if not low <= changes["temperature"] <= high:
            raise ValueError
    except ValueError:
        errors.append(f"Temperature is a number from {low:g} to {high:g}.")
    try:
        changes["max_tokens"] = int(data.max_tokens)
        if not 1 <= changes["max_tokens"] <= max_len:
            raise ValueError
    except ValueError:
        errors.append(f"Max tokens is a whole number from 1 to {max_len}.")
    return changes, errors


class ChatController(Controller):
    path = "/chat"
    guards = [requires_user]
    include_in_schema = False

    @get("/", name="chat")
    async def index(
        self, request: Request[Any, Any, Any], gateway: NamedDependency[GatewayService]
    ) -> Template:
        user = await user_of(request)
        return page(request, TEMPLATE, await page_context(user, None, gateway))

    @post("/new", status_code=303)
    async def new(
        self, request: Request[Any, Any, Any], settings: NamedDependency[Settings]
    ) -> Redirect:
        """An empty conversation (for scripts; the page's "+ New chat" opens the message box
        and stores nothing until the first message)."""
        user = await user_of(request)
        conversation = await services.create_conversation(int(user.id), settings.default_model)
        return Redirect(f"/chat/{conversation.id}", status_code=303)

    @post("/messages", status_code=200)
    async def start(
        self,
        request: Request[Any, Any, Any],
        data: URLEncodedBody[MessageForm],
        gateway: NamedDependency[GatewayService],
        generations: NamedDependency[Generations],
        settings: NamedDependency[Settings],
    ) -> Template | Redirect:
        """The first message: the conversation is stored with it, then answered (htmx: the
        new conversation replaces the message box, its address pushed to the history)."""
        user = await user_of(request)
        text = services.clean(data.content).strip()
        problem = "" if text else "Type a message first."
        if data.model and data.model not in model_names(gateway):
            problem = f"Unknown model {data.model[: services.MAX_MODEL_CHARS]!r}: pick another."
        project = await projects.owned(data.project, int(user.id)) if data.project else None
        if data.project and project is None:
            problem = "That project no longer exists: pick another, or start outside projects."
        if problem:
            context = {**await page_context(user, None, gateway), "form_error": problem}
            return page(request, TEMPLATE, context, status_code=400, block="composer")
        conversation = await services.start_conversation(
            int(user.id), data.model or settings.default_model, text, project=data.project
        )
        response = await _answer_again(
            request, gateway, generations, user, conversation, block="workspace"
        )
        if isinstance(response, Template):
            response.headers["HX-Push-Url"] = f"/chat/{conversation.id}"
        return response

    @get("/{conversation_id:int}", name="conversation")
    async def show(
        self,
        request: Request[Any, Any, Any],
        conversation_id: FromPath[int],
        gateway: NamedDependency[GatewayService],
    ) -> Template:
        user, conversation = await conversation_of(request, conversation_id)
        return page(request, TEMPLATE, await page_context(user, conversation, gateway))

    @post("/{conversation_id:int}/messages", status_code=200)
    async def send(
        self,
        request: Request[Any, Any, Any],
        conversation_id: FromPath[int],
        data: URLEncodedBody[MessageForm],
        gateway: NamedDependency[GatewayService],
        generations: NamedDependency[Generations],
    ) -> Template | Redirect:
        user, conversation = await conversation_of(request, conversation_id)
        text = services.clean(data.content).strip()
        problem = "" if text else "Type a message first."
        unchanged = data.model is None or data.model == conversation.model
        if data.model and not unchanged and data.model not in model_names(gateway):
            problem = f"Unknown model {data.model[: services.MAX_MODEL_CHARS]!r}: pick another."
        if problem:
            context = {**await page_context(user, conversation, gateway), "form_error": problem}
            return page(request, TEMPLATE, context, status_code=400, block="composer")
        if not unchanged:
            await services.update_settings(conversation, {"model": data.model})
        first_title = conversation.title
        await services.add_message(conversation, "user", text)
        titled = conversation.title != first_title
        response = await _answer_again(
            request, gateway, generations, user, conversation, titled=titled
        )
        if titled and isinstance(response, Template):
            response.headers["HX-Trigger"] = "conversations-changed"  # the sidebar reloads
        return response

    @get("/{conversation_id:int}/messages/{message_id:int}/stream")
    async def stream(
        self,
        request: Request[Any, Any, Any],
        conversation_id: FromPath[int],
        message_id: FromPath[int],
        gateway: NamedDependency[GatewayService],
        generations: NamedDependency[Generations],
        quotas: NamedDependency[ChatQuotas],
    ) -> Stream:
        user, conversation = await conversation_of(request, conversation_id)
        message = (
            await Message.objects()
            .where((Message.id == message_id) & (Message.conversation == conversation.id))
            .first()
        )
        if message is None:
            raise NotFoundException("That message does not exist.")

        async def render_done(done_id: int) -> str:
            """The finished message, and out of band what changes with it: the actions under
            the last answer and the conversation's title. Nothing if it is gone (answered
            again, or its conversation deleted, while it was written)."""
            messages = [message_view(m) for m in await services.messages_of(conversation.id)]
            done = next((m for m in messages if m["id"] == done_id), None)
            if done is None:
                return ""
            fresh = await services.owned(int(conversation.id), int(user.id)) or conversation
            return await render_block(
                request,
                TEMPLATE,
                "finished",
                message=done,
                messages=messages,
                conversation=fresh,
                last=messages[-1]["id"] == done_id,
            )

        generation, started = await generations.attach(
            int(message.id), _job(gateway, user, conversation, request_id_of(request.scope))
        )
        events: AsyncIterator[bytes]
        if started:  # this page asked for the answer: it sees it from the first piece
            assert generation is not None
            events = follow_reply(generation, render_done, joined=0)
        else:  # a reload, another tab, another worker's answer, or a finished one

            async def render_refused() -> str:
                notice = FOLLOWERS_REFUSED.format(limit=quotas.followers)
                return await render_block(
                    request, TEMPLATE, "follow_refused", message_id=int(message.id), notice=notice
                )

            wait = gateway.settings.upstream_total_timeout
            followed = (
                follow_reply(generation, render_done)
                if generation is not None
                else follow_elsewhere(generations, int(message.id), render_done, wait)
            )
            events = within_quota(quotas, int(user.id), followed, render_refused)
        return Stream(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @post("/{conversation_id:int}/messages/{message_id:int}/stop", status_code=204)
    async def stop(
        self,
        request: Request[Any, Any, Any],
        conversation_id: FromPath[int],
        message_id: FromPath[int],
        generations: NamedDependency[Generations],
    ) -> None:
        _, conversation = await conversation_of(request, conversation_id)
        owned = await Message.exists().where(
            (Message.id == message_id) & (Message.conversation == conversation.id)
        )
        if not owned:
            raise NotFoundException("That message does not exist.")
        await generations.stop(message_id)

    @post("/{conversation_id:int}/settings", status_code=303)
    async def settings(
        self,
        request: Request[Any, Any, Any],
        conversation_id: FromPath[int],
        data: URLEncodedBody[SettingsForm],
        gateway: NamedDependency[GatewayService],
        settings: NamedDependency[Settings],
    ) -> Template | Redirect:
        user, conversation = await conversation_of(request, conversation_id)
        changes, errors = _settings_errors(data, model_names(gateway), settings.model_max_len)
        if errors:
            context = {**await page_context(user, conversation, gateway), "settings_errors": errors}
            return page(request, TEMPLATE, context, status_code=400)
        await services.update_settings(conversation, changes)
        return Redirect(f"/chat/{conversation.id}", status_code=303)

    @post("/{conversation_id:int}/regenerate", status_code=200)
    async def regenerate(
        self,
        request: Request[Any, Any, Any],
        conversation_id: FromPath[int],
        gateway: NamedDependency[GatewayService],
        generations: NamedDependency[Generations],
    ) -> Template | Redirect:
        user, conversation = await conversation_of(request, conversation_id)
        asked, _ = await services.last_messages(conversation.id)
        if asked is None:
            raise ValidationException("There is no question to answer again yet.")
        await _drop_after(generations, conversation, int(asked.id))
        return await _answer_again(request, gateway, generations, user, conversation)

    @post("/{conversation_id:int}/edit", status_code=200)
    async def edit(
        self,
        request: Request[Any, Any, Any],
        conversation_id: FromPath[int],
        data: URLEncodedBody[MessageForm],
        gateway: NamedDependency[GatewayService],
        generations: NamedDependency[Generations],
    ) -> Template | Redirect:
        user, conversation = await conversation_of(request, conversation_id)
        asked, _ = await services.last_messages(conversation.id)
        if asked is None or not data.content.strip():
            raise ValidationException("Type the new message first.")
        await services.replace_content(int(asked.id), data.content.strip())
        await _drop_after(generations, conversation, int(asked.id))
        return await _answer_again(request, gateway, generations, user, conversation)


async def _answer_again(
    request: Request[Any, Any, Any],
    gateway: GatewayService,
    generations: Generations,
    user: User,
    conversation: Conversation,
    *,
    block: str = "message_list",
    titled: bool = False,
) -> Template | Redirect:
    """Add a fresh reply to the conversation: streamed (htmx: the page's stream starts it) or
    generated before the redirect (no JS)."""
    reply = await services.add_message(conversation, "assistant", "", status="streaming")
    if not htmx_of(request):  # no JS: the reply is generated before the redirect
        job = _job(gateway, user, conversation, request_id_of(request.scope))
        generation, _ = await generations.attach(int(reply.id), job)
        if generation is not None:  # followed to its end (it goes on if this request goes)
            async for _ in generation.follow():
                pass
        return Redirect(f"/chat/{conversation.id}", status_code=303)
    context = {**await page_context(user, conversation, gateway), "titled": titled}
    return page(request, TEMPLATE, context, block=block)


async def _drop_after(generations: Generations, conversation: Conversation, asked: int) -> None:
    """Delete what follows the question to answer it again; an answer still being written
    there is stopped first, and waited for until it is stored (its task would otherwise write
    on for nobody, or into the next answer)."""
    for message in await services.messages_of(conversation.id):
        if message.id > asked and message.status in services.LIVE:
            await generations.stop_and_wait(int(message.id), STOP_PATIENCE)
    await services.drop_after(conversation.id, asked)


def _job(
    gateway: GatewayService, user: User, conversation: Conversation, request_id: str
) -> Callable[[Generation], Awaitable[None]]:
    async def run(generation: Generation) -> None:
        await generate(gateway, user, conversation, generation, request_id)

    return run

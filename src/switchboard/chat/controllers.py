"""The conversation page: messages streaming in, stop, settings, regenerate and edit.

The list (search, pin, archive, rename, delete) is in history_controllers.py, export and import
in transfer_controllers.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect, Stream, Template

from switchboard.accounts.guards import requires_user
from switchboard.chat import services
from switchboard.chat.quotas import ChatQuotas
from switchboard.chat.streaming import follow_reply, stream_reply, within_quota
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
        user = await user_of(request)
        conversation = await services.create_conversation(int(user.id), settings.default_model)
        return Redirect(f"/chat/{conversation.id}", status_code=303)

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
        response = await _answer_again(request, gateway, user, conversation)
        if conversation.title != first_title and isinstance(response, Template):
            response.headers["HX-Trigger"] = "conversations-changed"  # the sidebar reloads
        return response

    @get("/{conversation_id:int}/messages/{message_id:int}/stream")
    async def stream(
        self,
        request: Request[Any, Any, Any],
        conversation_id: FromPath[int],
        message_id: FromPath[int],
        gateway: NamedDependency[GatewayService],
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
            the last answer and the conversation's title."""
            messages = [message_view(m) for m in await services.messages_of(conversation.id)]
            done = next(m for m in messages if m["id"] == done_id)
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

        if await services.claim(int(message.id)):  # this request generates the reply
            events = stream_reply(
                gateway,
                user,
                conversation,
                int(message.id),
                render_done,
                request_id_of(request.scope),
            )
        else:  # another request generates it, or it is finished (a reload): wait, then show it
            wait = gateway.settings.upstream_total_timeout

            async def render_refused() -> str:
                notice = FOLLOWERS_REFUSED.format(limit=quotas.followers)
                return await render_block(
                    request, TEMPLATE, "follow_refused", message_id=int(message.id), notice=notice
                )

            followed = follow_reply(int(message.id), render_done, wait)
            events = within_quota(quotas, int(user.id), followed, render_refused)
        return Stream(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @post("/{conversation_id:int}/messages/{message_id:int}/stop", status_code=204)
    async def stop(
        self,
        request: Request[Any, Any, Any],
        conversation_id: FromPath[int],
        message_id: FromPath[int],
    ) -> None:
        _, conversation = await conversation_of(request, conversation_id)
        owned = await Message.exists().where(
            (Message.id == message_id) & (Message.conversation == conversation.id)
        )
        if not owned:
            raise NotFoundException("That message does not exist.")
        await services.request_stop(message_id)

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
    ) -> Template | Redirect:
        user, conversation = await conversation_of(request, conversation_id)
        asked, _ = await services.last_messages(conversation.id)
        if asked is None:
            raise ValidationException("There is no question to answer again yet.")
        await services.drop_after(conversation.id, int(asked.id))
        return await _answer_again(request, gateway, user, conversation)

    @post("/{conversation_id:int}/edit", status_code=200)
    async def edit(
        self,
        request: Request[Any, Any, Any],
        conversation_id: FromPath[int],
        data: URLEncodedBody[MessageForm],
        gateway: NamedDependency[GatewayService],
    ) -> Template | Redirect:
        user, conversation = await conversation_of(request, conversation_id)
        asked, _ = await services.last_messages(conversation.id)
        if asked is None or not data.content.strip():
            raise ValidationException("Type the new message first.")
        await services.replace_content(int(asked.id), data.content.strip())
        await services.drop_after(conversation.id, int(asked.id))
        return await _answer_again(request, gateway, user, conversation)


async def _answer_again(
    request: Request[Any, Any, Any],
    gateway: GatewayService,
    user: User,
    conversation: Conversation,
) -> Template | Redirect:
    """Add a fresh reply to the conversation: streamed (htmx) or generated here (no JS)."""
    no_js = not htmx_of(request)  # then the reply is generated right here
    reply = await services.add_message(
        conversation, "assistant", "", status="generating" if no_js else "streaming"
    )
    if no_js:
        async for _ in stream_reply(gateway, user, conversation, int(reply.id), _no_render):
            pass
        return Redirect(f"/chat/{conversation.id}", status_code=303)
    context = await page_context(user, conversation, gateway)
    return page(request, TEMPLATE, context, block="message_list")


async def _no_render(_: int) -> str:
    return ""

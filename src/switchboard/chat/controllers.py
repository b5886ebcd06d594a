"""The chat pages: conversations, messages streaming in, stop, rename, delete, search."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.plugins.htmx import ClientRedirect
from litestar.response import Redirect, Stream, Template

from switchboard.accounts.guards import current_user, requires_user
from switchboard.accounts.tables import User
from switchboard.chat import services
from switchboard.chat.markdown import render_markdown
from switchboard.chat.streaming import stream_reply
from switchboard.chat.tables import Conversation, Message
from switchboard.gateway.service import GatewayService
from switchboard.observability.request_id import request_id_of
from switchboard.settings import Settings
from switchboard.web.rendering import page, render_block

TEMPLATE = "chat/page.html"


class MessageForm(msgspec.Struct):
    content: str = ""


class RenameForm(msgspec.Struct):
    title: str = ""


async def _user(request: Request[Any, Any, Any]) -> User:
    user = await current_user(request)
    assert user is not None  # the guard ran
    return user


async def _conversation(
    request: Request[Any, Any, Any], conversation_id: int
) -> tuple[User, Conversation]:
    user = await _user(request)
    conversation = await services.owned(conversation_id, int(user.id))
    if conversation is None:  # someone else's looks exactly like a missing one
        raise NotFoundException("That conversation does not exist.")
    return user, conversation


def _view(message: Message) -> dict[str, Any]:
    return {
        "id": message.id, "role": message.role, "status": message.status, "error": message.error,
        "html": render_markdown(message.content) if message.role == "assistant" else None,
        "text": message.content,
    }  # fmt: skip


class ChatController(Controller):
    path = "/chat"
    guards = [requires_user]
    include_in_schema = False

    async def _page_context(
        self, user: User, conversation: Conversation | None, query: str = ""
    ) -> dict[str, Any]:
        listing = await services.list_conversations(int(user.id), query=query)
        messages = await services.messages_of(conversation.id) if conversation else []
        return {
            "user": user, "conversation": conversation, "query": query,
            "conversations": listing[: services.PAGE_SIZE],
            "more": len(listing) > services.PAGE_SIZE, "page_number": 0,
            "messages": [_view(m) for m in messages],
        }  # fmt: skip

    @get("/", name="chat")
    async def index(self, request: Request[Any, Any, Any]) -> Template:
        user = await _user(request)
        return page(request, TEMPLATE, await self._page_context(user, None))

    @get("/list", name="chat-list")
    async def listing(
        self,
        request: Request[Any, Any, Any],
        q: FromQuery[str] = "",
        page_number: FromQuery[int] = 0,
    ) -> Template:
        user = await _user(request)
        rows = await services.list_conversations(int(user.id), query=q, page=page_number)
        context = {
            "conversations": rows[: services.PAGE_SIZE], "more": len(rows) > services.PAGE_SIZE,
            "query": q, "page_number": page_number, "conversation": None,
        }  # fmt: skip
        return page(request, TEMPLATE, context, block="conversation_items")

    @post("/new", status_code=303)
    async def new(
        self, request: Request[Any, Any, Any], settings: NamedDependency[Settings]
    ) -> Redirect:
        user = await _user(request)
        conversation = await services.create_conversation(int(user.id), settings.default_model)
        return Redirect(f"/chat/{conversation.id}", status_code=303)

    @get("/{conversation_id:int}", name="conversation")
    async def show(
        self, request: Request[Any, Any, Any], conversation_id: FromPath[int]
    ) -> Template:
        user, conversation = await _conversation(request, conversation_id)
        return page(request, TEMPLATE, await self._page_context(user, conversation))

    @post("/{conversation_id:int}/messages", status_code=200)
    async def send(
        self,
        request: Request[Any, Any, Any],
        conversation_id: FromPath[int],
        data: URLEncodedBody[MessageForm],
        gateway: NamedDependency[GatewayService],
    ) -> Template | Redirect:
        user, conversation = await _conversation(request, conversation_id)
        text = data.content.strip()
        if not text:
            context = {
                **await self._page_context(user, conversation),
                "form_error": "Type a message first.",
            }
            return page(request, TEMPLATE, context, status_code=400, block="composer")
        asked = await services.add_message(conversation, "user", text)
        reply = await services.add_message(conversation, "assistant", "", status="streaming")
        if request.headers.get("hx-request") != "true":
            # Without JavaScript: generate here, then show the conversation.
            async for _ in stream_reply(gateway, user, conversation, int(reply.id), _no_render):
                pass
            return Redirect(f"/chat/{conversation.id}", status_code=303)
        context = {"conversation": conversation, "messages": [_view(asked), _view(reply)]}
        return page(request, TEMPLATE, context, block="exchange")

    @get("/{conversation_id:int}/messages/{message_id:int}/stream")
    async def stream(
        self,
        request: Request[Any, Any, Any],
        conversation_id: FromPath[int],
        message_id: FromPath[int],
        gateway: NamedDependency[GatewayService],
    ) -> Stream:
        user, conversation = await _conversation(request, conversation_id)
        message = (
            await Message.objects()
            .where((Message.id == message_id) & (Message.conversation == conversation.id))
            .first()
        )
        if message is None:
            raise NotFoundException("That message does not exist.")

        async def render_done(done_id: int) -> str:
            done = await Message.objects().where(Message.id == done_id).first()
            assert done is not None
            return await render_block(
                request, TEMPLATE, "message", message=_view(done), conversation=conversation
            )

        if message.status != "streaming":  # already finished (a reload): just show it

            async def finished() -> Any:
                from switchboard.chat.streaming import sse

                yield sse("done", await render_done(int(message.id)))

            events = finished()
        else:
            events = stream_reply(gateway, user, conversation, int(message.id), render_done,
                                  request_id_of(request.scope))  # fmt: skip
        return Stream(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @post("/{conversation_id:int}/messages/{message_id:int}/stop", status_code=204)
    async def stop(
        self,
        request: Request[Any, Any, Any],
        conversation_id: FromPath[int],
        message_id: FromPath[int],
    ) -> None:
        _, conversation = await _conversation(request, conversation_id)
        owned = await Message.exists().where(
            (Message.id == message_id) & (Message.conversation == conversation.id)
        )
        if not owned:
            raise NotFoundException("That message does not exist.")
        await services.request_stop(message_id)

    @post("/{conversation_id:int}/rename", status_code=303)
    async def rename(
        self,
        request: Request[Any, Any, Any],
        conversation_id: FromPath[int],
        data: URLEncodedBody[RenameForm],
    ) -> Redirect:
        _, conversation = await _conversation(request, conversation_id)
        await services.rename(conversation, data.title)
        return Redirect(f"/chat/{conversation.id}", status_code=303)

    @post("/{conversation_id:int}/delete", status_code=303)
    async def delete(
        self, request: Request[Any, Any, Any], conversation_id: FromPath[int]
    ) -> Response[Any]:
        _, conversation = await _conversation(request, conversation_id)
        await services.delete(conversation)
        if request.headers.get("hx-request") == "true":
            return ClientRedirect("/chat")
        return Redirect("/chat", status_code=303)


async def _no_render(_: int) -> str:
    return ""

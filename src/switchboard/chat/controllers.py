"""The chat pages: conversations, messages streaming in, stop, rename, delete, search."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, ValidationException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.params import FromPath, FromQuery, MultipartBody, QueryParameter, URLEncodedBody
from litestar.plugins.htmx import ClientRedirect
from litestar.response import Redirect, Stream, Template

from switchboard.accounts.guards import current_user, requires_user
from switchboard.accounts.tables import User
from switchboard.chat import import_limits, services, transfer
from switchboard.chat.markdown import render_markdown
from switchboard.chat.streaming import follow_reply, stream_reply
from switchboard.chat.tables import Conversation, Message
from switchboard.gateway.service import GatewayService
from switchboard.observability.request_id import request_id_of
from switchboard.settings import Settings
from switchboard.web.errors import handle_exception
from switchboard.web.rendering import page, render_block

TEMPLATE = "chat/page.html"
PageNumber = Annotated[int, QueryParameter(ge=0, le=services.MAX_PAGE)]


class MessageForm(msgspec.Struct):
    content: str = ""


class RenameForm(msgspec.Struct):
    title: str = ""


class SettingsForm(msgspec.Struct):
    system_prompt: str = ""
    model: str = ""
    temperature: str = "0.7"
    max_tokens: str = "512"


@dataclass
class ImportForm:
    file: UploadFile


def _settings_errors(
    data: SettingsForm, models: list[str], max_len: int
) -> tuple[dict[str, Any], list[str]]:
    errors: list[str] = []
    system_prompt = data.system_prompt.strip()[: services.MAX_SYSTEM_PROMPT_CHARS]
    changes: dict[str, Any] = {"system_prompt": system_prompt}
    if data.model and data.model not in models:
        errors.append(f"Unknown model {data.model!r}.")
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


def _import_too_large(request: Request[Any, Any, Any], _: Exception) -> Response[Any]:
    """A request body over the import's limit (refused before it is read): the error page, with
    the import's own explanation."""
    return handle_exception(request, RequestEntityTooLarge(detail=import_limits.TOO_LARGE))


def _view(message: Message) -> dict[str, Any]:
    return {
        "id": message.id, "role": message.role, "status": message.status, "error": message.error,
        "html": render_markdown(message.content) if message.role == "assistant" else None,
        "text": message.content, "live": message.status in services.LIVE,
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
        page_number: PageNumber = 0,
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
        text = services.clean(data.content).strip()
        if not text:
            context = {
                **await self._page_context(user, conversation),
                "form_error": "Type a message first.",
            }
            return page(request, TEMPLATE, context, status_code=400, block="composer")
        first_title = conversation.title
        await services.add_message(conversation, "user", text)
        response = await _answer_again(request, gateway, user, conversation, self)
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

        if await services.claim(int(message.id)):  # this request generates the reply
            events = stream_reply(gateway, user, conversation, int(message.id), render_done,
                                  request_id_of(request.scope))  # fmt: skip
        else:  # another request generates it, or it is finished (a reload): wait, then show it
            wait = gateway.settings.upstream_total_timeout
            events = follow_reply(int(message.id), render_done, wait)
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

    @post("/{conversation_id:int}/settings", status_code=303)
    async def settings(
        self,
        request: Request[Any, Any, Any],
        conversation_id: FromPath[int],
        data: URLEncodedBody[SettingsForm],
        gateway: NamedDependency[GatewayService],
        settings: NamedDependency[Settings],
    ) -> Template | Redirect:
        user, conversation = await _conversation(request, conversation_id)
        models = [card.id for card in gateway.list_models().data]
        changes, errors = _settings_errors(data, models, settings.model_max_len)
        if errors:
            context = {**await self._page_context(user, conversation), "settings_errors": errors}
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
        user, conversation = await _conversation(request, conversation_id)
        asked, _ = await services.last_messages(conversation.id)
        if asked is None:
            raise ValidationException("There is no question to answer again yet.")
        await services.drop_after(conversation.id, int(asked.id))
        return await _answer_again(request, gateway, user, conversation, self)

    @post("/{conversation_id:int}/edit", status_code=200)
    async def edit(
        self,
        request: Request[Any, Any, Any],
        conversation_id: FromPath[int],
        data: URLEncodedBody[MessageForm],
        gateway: NamedDependency[GatewayService],
    ) -> Template | Redirect:
        user, conversation = await _conversation(request, conversation_id)
        asked, _ = await services.last_messages(conversation.id)
        if asked is None or not data.content.strip():
            raise ValidationException("Type the new message first.")
        await services.replace_content(int(asked.id), data.content.strip())
        await services.drop_after(conversation.id, int(asked.id))
        return await _answer_again(request, gateway, user, conversation, self)

    @get("/{conversation_id:int}/export.md")
    async def export_markdown(
        self, request: Request[Any, Any, Any], conversation_id: FromPath[int]
    ) -> Response[Any]:
        _, conversation = await _conversation(request, conversation_id)
        exported = await transfer.export_one(conversation)
        return _download(
            transfer.as_markdown(exported), f"conversation-{conversation.id}.md", "text/markdown"
        )

    @get("/{conversation_id:int}/export.json")
    async def export_json(
        self, request: Request[Any, Any, Any], conversation_id: FromPath[int]
    ) -> Response[Any]:
        _, conversation = await _conversation(request, conversation_id)
        exported = transfer.Export(conversations=[await transfer.export_one(conversation)])
        return _download(
            msgspec.json.encode(exported),
            f"conversation-{conversation.id}.json",
            "application/json",
        )

    @get("/export.json")
    async def export_everything(self, request: Request[Any, Any, Any]) -> Response[Any]:
        user = await _user(request)
        exported = await transfer.export_all(int(user.id))
        return _download(msgspec.json.encode(exported), "conversations.json", "application/json")

    @post(
        "/import",
        status_code=303,
        request_max_body_size=import_limits.MAX_IMPORT_BYTES + import_limits.MULTIPART_SLACK,
        exception_handlers={413: _import_too_large},
    )
    async def import_json(
        self,
        request: Request[Any, Any, Any],
        data: MultipartBody[ImportForm],
        settings: NamedDependency[Settings],
    ) -> Template | Redirect:
        user = await _user(request)
        try:  # one byte more than allowed is enough to know the file is too large
            parsed = transfer.parse_import(await data.file.read(import_limits.MAX_IMPORT_BYTES + 1))
        except transfer.ImportError_ as exc:
            context = {**await self._page_context(user, None), "import_error": str(exc)[:300]}
            return page(request, TEMPLATE, context, status_code=exc.status_code)
        await transfer.import_all(int(user.id), parsed, max_tokens=settings.model_max_len)
        return Redirect("/chat", status_code=303)

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


async def _answer_again(
    request: Request[Any, Any, Any],
    gateway: GatewayService,
    user: User,
    conversation: Conversation,
    controller: ChatController,
) -> Template | Redirect:
    """Add a fresh reply to the conversation: streamed (htmx) or generated here (no JS)."""
    no_js = request.headers.get("hx-request") != "true"  # then the reply is generated right here
    reply = await services.add_message(
        conversation, "assistant", "", status="generating" if no_js else "streaming"
    )
    if no_js:
        async for _ in stream_reply(gateway, user, conversation, int(reply.id), _no_render):
            pass
        return Redirect(f"/chat/{conversation.id}", status_code=303)
    context = await controller._page_context(user, conversation)
    return page(request, TEMPLATE, context, block="message_list")


def _download(body: bytes | str, filename: str, media_type: str) -> Response[Any]:
    return Response(
        content=body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def _no_render(_: int) -> str:
    return ""

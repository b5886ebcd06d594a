"""The conversation list: search (with the matching passage), date groups, pin, archive,
rename and delete."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, QueryParameter, URLEncodedBody
from litestar.plugins.htmx import ClientRedirect
from litestar.response import Redirect, Template

from switchboard.accounts.guards import requires_user
from switchboard.chat import history, projects, services
from switchboard.chat.generations import STOP_PATIENCE, Generations
from switchboard.chat.views import TEMPLATE, conversation_of, user_of
from switchboard.web.htmx import htmx_of
from switchboard.web.inputs import MAX_ID
from switchboard.web.rendering import page

PageNumber = Annotated[int, QueryParameter(ge=0, le=services.MAX_PAGE)]
ProjectId = Annotated[int | None, QueryParameter(ge=1, le=MAX_ID)]


class RenameForm(msgspec.Struct):
    title: str = ""


class ChatHistoryController(Controller):
    path = "/chat"
    guards = [requires_user]
    include_in_schema = False

    @get("/list", name="chat-list")
    async def listing(
        self,
        request: Request[Any, Any, Any],
        q: FromQuery[str] = "",
        page_number: PageNumber = 0,
        project: ProjectId = None,
    ) -> Template:
        """The sidebar's list (conversations in no project), a search (all of them), or the
        list of ``project``'s conversations (its page)."""
        user = await user_of(request)
        if project is not None and await projects.owned(project, int(user.id)) is None:
            raise NotFoundException("That project does not exist.")
        rows, more = await history.listing(int(user.id), query=q, page=page_number, project=project)
        context = {
            "conversations": rows,
            "more": more,
            "query": q,
            "page_number": page_number,
            "conversation": None,
            "list_project": project,
        }
        return page(request, TEMPLATE, context, block="conversation_items")

    @post("/{conversation_id:int}/pin", status_code=303)
    async def pin(
        self, request: Request[Any, Any, Any], conversation_id: FromPath[int]
    ) -> Redirect:
        _, conversation = await conversation_of(request, conversation_id)
        await services.set_flags(
            conversation, pinned=not conversation.pinned, archived=conversation.archived
        )
        return Redirect(f"/chat/{conversation.id}", status_code=303)

    @post("/{conversation_id:int}/archive", status_code=303)
    async def archive(
        self, request: Request[Any, Any, Any], conversation_id: FromPath[int]
    ) -> Redirect:
        """Archive (out of the list, and unpinned) or bring back to the list."""
        _, conversation = await conversation_of(request, conversation_id)
        archived = not conversation.archived
        await services.set_flags(conversation, pinned=False, archived=archived)
        return Redirect("/chat" if archived else f"/chat/{conversation.id}", status_code=303)

    @post("/{conversation_id:int}/rename", status_code=303)
    async def rename(
        self,
        request: Request[Any, Any, Any],
        conversation_id: FromPath[int],
        data: URLEncodedBody[RenameForm],
    ) -> Redirect:
        _, conversation = await conversation_of(request, conversation_id)
        await services.rename(conversation, data.title)
        return Redirect(f"/chat/{conversation.id}", status_code=303)

    @post("/{conversation_id:int}/delete", status_code=303)
    async def delete(
        self,
        request: Request[Any, Any, Any],
        conversation_id: FromPath[int],
        generations: NamedDependency[Generations],
    ) -> Response[Any]:
        _, conversation = await conversation_of(request, conversation_id)
        live = await services.live_answers(conversation_id=int(conversation.id))
        await generations.stop_all_and_wait(live, STOP_PATIENCE)  # nothing writes on
        await services.delete(conversation)
        if htmx_of(request):
            return ClientRedirect("/chat")
        return Redirect("/chat", status_code=303)

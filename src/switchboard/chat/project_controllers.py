"""Projects in the workspace: create (from the sidebar), the project's page (its conversations,
name and instructions), a new chat in it, delete, and moving a conversation in or out."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import FromPath, URLEncodedBody
from litestar.plugins.htmx import ClientRedirect
from litestar.response import Redirect, Template

from switchboard.accounts.guards import requires_user
from switchboard.chat import history, projects, services
from switchboard.chat.generations import STOP_PATIENCE, Generations
from switchboard.chat.tables import Project
from switchboard.chat.views import TEMPLATE, conversation_of, page_context, user_of
from switchboard.gateway.service import GatewayService
from switchboard.web.htmx import htmx_of
from switchboard.web.inputs import MAX_ID
from switchboard.web.rendering import page

DELETE_CHOICES = {"keep": False, "delete": True}
"""The delete form's ``conversations`` field: move them out of the project, or delete them."""


class ProjectForm(msgspec.Struct):
    name: str = ""
    instructions: str = ""


class MoveForm(msgspec.Struct):
    project: str = ""
    """A project's id, or "" for none."""


class DeleteForm(msgspec.Struct):
    conversations: str = "keep"


def _client_redirect(to: str) -> Response[Any]:
    """htmx goes to ``to`` (its header on a 200: the route's 303 would carry no Location)."""
    response = ClientRedirect(to)
    response.status_code = 200
    return response


async def project_of(request: Request[Any, Any, Any], project_id: int) -> Project:
    user = await user_of(request)
    project = await projects.owned(project_id, int(user.id))
    if project is None:  # someone else's looks exactly like a missing one
        raise NotFoundException("That project does not exist.")
    return project


async def project_page(
    request: Request[Any, Any, Any],
    project: Project,
    gateway: GatewayService,
    *,
    status_code: int = 200,
    **extra: Any,
) -> Template:
    user = await user_of(request)
    rows, more = await history.listing(int(user.id), project=int(project.id))
    context = {
        **await page_context(user, None, gateway, project=project),
        "project_page": True,
        "project_conversations": rows,
        "project_more": more,
        **extra,
    }
    return page(request, TEMPLATE, context, status_code=status_code)


class ProjectController(Controller):
    path = "/chat"
    guards = [requires_user]
    include_in_schema = False

    @post("/projects", status_code=303)
    async def create(
        self,
        request: Request[Any, Any, Any],
        data: URLEncodedBody[ProjectForm],
        gateway: NamedDependency[GatewayService],
    ) -> Template | Response[Any]:
        """htmx gets the form back with the problem in place (200: htmx swaps no 4xx), or is
        sent to the new project; a plain form post gets the page (400) or the project."""
        user = await user_of(request)
        try:
            project = await projects.create(int(user.id), data.name, data.instructions)
        except projects.ProjectProblem as exc:
            problem = {"project_error": str(exc), "project_form": data}
            if htmx_of(request):
                return page(request, TEMPLATE, problem, block="new_project")
            context = {**await page_context(user, None, gateway), **problem}
            return page(request, TEMPLATE, context, status_code=400)
        if htmx_of(request):
            return _client_redirect(f"/chat/projects/{project.id}")
        return Redirect(f"/chat/projects/{project.id}", status_code=303)

    @get("/projects/{project_id:int}", name="project")
    async def show(
        self,
        request: Request[Any, Any, Any],
        project_id: FromPath[int],
        gateway: NamedDependency[GatewayService],
    ) -> Template:
        return await project_page(request, await project_of(request, project_id), gateway)

    @post("/projects/{project_id:int}/edit", status_code=303)
    async def edit(
        self,
        request: Request[Any, Any, Any],
        project_id: FromPath[int],
        data: URLEncodedBody[ProjectForm],
        gateway: NamedDependency[GatewayService],
    ) -> Template | Redirect:
        project = await project_of(request, project_id)
        try:
            await projects.edit(project, data.name, data.instructions)
        except projects.ProjectProblem as exc:
            return await project_page(
                request, project, gateway, status_code=400, edit_error=str(exc), edit_form=data
            )
        return Redirect(f"/chat/projects/{project.id}", status_code=303)

    @post("/projects/{project_id:int}/delete", status_code=303)
    async def delete(
        self,
        request: Request[Any, Any, Any],
        project_id: FromPath[int],
        data: URLEncodedBody[DeleteForm],
        generations: NamedDependency[Generations],
    ) -> Response[Any]:
        project = await project_of(request, project_id)
        if data.conversations not in DELETE_CHOICES:
            raise ValidationException(
                "Choose what happens to the project's conversations: keep them (moved out of "
                "the project) or delete them."
            )
        with_conversations = DELETE_CHOICES[data.conversations]
        if with_conversations:  # nothing writes on for a deleted conversation
            live = await services.live_answers(project_id=int(project.id))
            await generations.stop_all_and_wait(live, STOP_PATIENCE)
        await projects.delete(project, with_conversations=with_conversations)
        if htmx_of(request):
            return _client_redirect("/chat")
        return Redirect("/chat", status_code=303)

    @post("/{conversation_id:int}/project", status_code=303)
    async def move(
        self,
        request: Request[Any, Any, Any],
        conversation_id: FromPath[int],
        data: URLEncodedBody[MoveForm],
    ) -> Redirect:
        """Into one of the user's projects, or out of any ("")."""
        _, conversation = await conversation_of(request, conversation_id)
        target = None
        if data.project.strip():
            try:
                project_id = int(data.project)
            except ValueError:
                raise ValidationException("Pick a project from the list.") from None
            if not 0 < project_id <= MAX_ID:
                raise NotFoundException("That project does not exist.")
            target = await project_of(request, project_id)
        await projects.move(conversation, target)
        return Redirect(f"/chat/{conversation.id}", status_code=303)

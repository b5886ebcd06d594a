"""What the chat controllers share: the signed-in user, their conversation, and the page's
context (sidebar, messages as the templates show them, the models the composer offers)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Request
from litestar.exceptions import NotFoundException

from switchboard.accounts.guards import current_user
from switchboard.chat import history, projects, services
from switchboard.chat.markdown import render_markdown
from switchboard.chat.tables import Conversation, Message, Project
from switchboard.gateway.service import GatewayService

if TYPE_CHECKING:
    from switchboard.accounts.tables import User

TEMPLATE = "chat/page.html"
UNAVAILABLE = (502, 503, 504)
"""Error statuses shown as "the model is down" with a retry button."""


async def user_of(request: Request[Any, Any, Any]) -> User:
    user = await current_user(request)
    assert user is not None  # the guard ran
    return user


async def conversation_of(
    request: Request[Any, Any, Any], conversation_id: int
) -> tuple[User, Conversation]:
    user = await user_of(request)
    conversation = await services.owned(conversation_id, int(user.id))
    if conversation is None:  # someone else's looks exactly like a missing one
        raise NotFoundException("That conversation does not exist.")
    return user, conversation


def message_view(message: Message) -> dict[str, Any]:
    retry_in = None
    if message.retry_at is not None:
        retry_in = max(0, round((message.retry_at - services.now()).total_seconds()))
    return {
        "id": message.id,
        "role": message.role,
        "status": message.status,
        "error": message.error,
        "html": render_markdown(message.content) if message.role == "assistant" else None,
        "text": message.content,
        "live": message.status in services.LIVE,
        "unavailable": message.error_status in UNAVAILABLE,
        "limited": message.error_status == 429,
        "retry_in": retry_in,
        "retry_at": message.retry_at,
        "retry_in_text": duration(retry_in or 0),
    }


def duration(seconds: int) -> str:
    """``42 s``, ``3 min 5 s``, ``2 h 10 min``, ``3 days 4 h``: how long until a limit resets."""
    minutes, sec = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} day{'s' * (days != 1)}" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    if minutes:
        return f"{minutes} min" + (f" {sec} s" if sec else "")
    return f"{sec} s"


def model_names(gateway: GatewayService | None) -> list[str]:
    return [card.id for card in gateway.list_models().data] if gateway else []


async def page_context(
    user: User,
    conversation: Conversation | None,
    gateway: GatewayService | None = None,
    query: str = "",
    project: Project | None = None,
) -> dict[str, Any]:
    """``project``: the project page's (else the conversation's project, if it has one)."""
    rows, more = await history.listing(int(user.id), query=query)
    messages = await services.messages_of(conversation.id) if conversation else []
    if conversation is not None and project is None:
        project = await projects.project_of(conversation)
    return {
        "user": user,
        "conversation": conversation,
        "projects": await projects.list_projects(int(user.id)),
        "project": project,
        "query": query,
        "conversations": rows,
        "more": more,
        "page_number": 0,
        "messages": [message_view(m) for m in messages],
        "models": model_names(gateway),
        "default_model": gateway.settings.default_model if gateway else "",
        "new_conversation": Conversation(),  # its settings, shown in the message box (unsaved)
    }

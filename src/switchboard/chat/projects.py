"""Projects: a user's groups of conversations with shared instructions, scoped to their owner.

A conversation in a project is sent one system message: the project's instructions, a blank
line, then the conversation's own system prompt (either alone when the other is empty). The
project sets the ground rules; the conversation's prompt, being more specific, comes last.
Deleting a project moves its conversations out of it, or deletes them, as the user chooses.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from switchboard.chat import import_limits, services
from switchboard.chat.schemas import ExportedProject
from switchboard.chat.tables import Conversation, Project

MAX_NAME_CHARS = import_limits.MAX_PROJECT_NAME_CHARS
MAX_INSTRUCTIONS_CHARS = services.MAX_SYSTEM_PROMPT_CHARS


class ProjectProblem(ValueError):
    """A name or instructions the project cannot take (the message says why)."""


def system_prompt(instructions: str, own: str) -> str:
    """The system message of a conversation in a project (see the module's docstring)."""
    if not instructions.strip():
        return own if own.strip() else ""
    if not own.strip():
        return instructions
    return f"{instructions}\n\n{own}"


def checked(name: str, instructions: str) -> tuple[str, str]:
    """The name and instructions as stored (NUL removed, spaces trimmed), or ProjectProblem."""
    name = " ".join(services.clean(name).split())
    instructions = services.clean(instructions).strip()
    if not name:
        raise ProjectProblem("Give the project a name.")
    if len(name) > MAX_NAME_CHARS:
        raise ProjectProblem(
            f"A project name can be at most {MAX_NAME_CHARS} characters (this one has {len(name)})."
        )
    if len(instructions) > MAX_INSTRUCTIONS_CHARS:
        raise ProjectProblem(
            f"Instructions can be at most {MAX_INSTRUCTIONS_CHARS} characters (these have "
            f"{len(instructions)})."
        )
    return name, instructions


async def list_projects(user_id: int) -> list[dict[str, Any]]:
    """``user_id``'s projects by name (id, name), for the sidebar and the move menu."""
    rows: list[dict[str, Any]] = await Project.select(Project.id, Project.name).where(
        Project.user == user_id
    )
    return sorted(rows, key=lambda row: (str(row["name"]).casefold(), int(row["id"])))


async def owned(project_id: int, user_id: int) -> Project | None:
    """The project if it belongs to ``user_id`` (others' look like missing ones)."""
    return (
        await Project.objects()
        .where((Project.id == project_id) & (Project.user == user_id))
        .first()
    )


async def _name_taken(user_id: int, name: str, but: int | None = None) -> bool:
    return any(
        str(row["name"]).casefold() == name.casefold() and row["id"] != but
        for row in await list_projects(user_id)
    )


async def create(user_id: int, name: str, instructions: str = "") -> Project:
    name, instructions = checked(name, instructions)
    if await _name_taken(user_id, name):
        raise ProjectProblem(f"You already have a project named {name!r}: pick another name.")
    project = Project(user=user_id, name=name, instructions=instructions)
    await project.save()
    return project


async def edit(project: Project, name: str, instructions: str) -> None:
    """Rename and set the instructions (the next message of each conversation uses them)."""
    name, instructions = checked(name, instructions)
    if await _name_taken(int(project.user), name, but=int(project.id)):
        raise ProjectProblem(f"You already have a project named {name!r}: pick another name.")
    project.name, project.instructions = name, instructions
    await Project.update(
        {Project.name: name, Project.instructions: instructions, Project.updated_at: services.now()}
    ).where(Project.id == project.id)


async def delete(project: Project, *, with_conversations: bool) -> None:
    """Delete the project; its conversations are deleted too or moved out of it."""
    engine = Project._meta.db
    async with engine.transaction():
        in_project = (Conversation.project == project.id) & (Conversation.user == project.user)
        if with_conversations:
            await Conversation.delete().where(in_project)
        else:
            await Conversation.update({Conversation.project: None}).where(in_project)
        await Project.delete().where(Project.id == project.id)


async def move(conversation: Conversation, project: Project | None) -> None:
    """Into ``project`` (one of the conversation owner's: the caller checked) or out (None)."""
    project_id = None if project is None else int(project.id)
    conversation.project = project_id
    await Conversation.update({Conversation.project: project_id}).where(
        Conversation.id == conversation.id
    )


async def project_of(conversation: Conversation) -> Project | None:
    if conversation.project is None:
        return None
    return await owned(int(conversation.project), int(conversation.user))


async def instructions_for(conversation: Conversation) -> str:
    """The instructions of the conversation's project ("" outside any)."""
    project = await project_of(conversation)
    return project.instructions if project is not None else ""


async def names_of(user_id: int) -> dict[int, str]:
    return {int(row["id"]): str(row["name"]) for row in await list_projects(user_id)}


async def all_of(user_id: int) -> list[Project]:
    return await Project.objects().where(Project.user == user_id).order_by(Project.id)


def key_of(name: str) -> str:
    """What makes two project names the same one (case and spacing aside)."""
    return " ".join(services.clean(name).split()).casefold()


async def for_import(
    user_id: int, exported: list[ExportedProject], named: Iterable[str]
) -> dict[str, int]:
    """The ids of the imported projects (by ``key_of`` their name): ``user_id``'s project of
    that name if there is one (left as it is), else a new one (with the exported instructions,
    or none for a name only a conversation gives). The names were checked (import_limits)."""
    ids = {key_of(str(row["name"])): int(row["id"]) for row in await list_projects(user_id)}
    wanted = [(p.name, p.instructions, p.created_at) for p in exported]
    wanted += [(name, "", None) for name in named]
    for name, instructions, created_at in wanted:
        if not key_of(name) or key_of(name) in ids:
            continue
        name, instructions = checked(name, instructions)
        project = Project(user=user_id, name=name, instructions=instructions)
        if created_at is not None:
            project.created_at = project.updated_at = import_limits.as_utc(created_at)
        await project.save()
        ids[key_of(name)] = int(project.id)
    return ids

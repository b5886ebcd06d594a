"""The admin page: create users, disable and re-enable them, set their default limits."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Template

from switchboard.accounts.guards import current_user, requires_admin
from switchboard.accounts.services import (
    AccountError,
    create_user,
    normalise_username,
    password_problem,
    set_password,
)
from switchboard.accounts.tables import User
from switchboard.settings import Settings
from switchboard.web.inputs import MAX_ID
from switchboard.web.rendering import page


class NewUserForm(msgspec.Struct):
    username: str = ""
    password: str = ""
    role: str = "member"


class ResetForm(msgspec.Struct):
    password: str = ""


class LimitsForm(msgspec.Struct):
    default_rpm: str = ""
    default_tpm: str = ""


class AdminController(Controller):
    path = "/admin"
    guards = [requires_admin]
    include_in_schema = False

    async def _render(self, request: Request[Any, Any, Any], **extra: Any) -> Template:
        users = await User.select(
            User.id,
            User.username,
            User.role,
            User.is_active,
            User.default_rpm,
            User.default_tpm,
            User.created_at,
        ).order_by(User.username)
        context = {
            "user": await current_user(request),
            "users": users,
            "error": None,
            "min_length": request.app.state.resources.settings.password_min_length,
            **extra,
        }
        return page(
            request, "admin/page.html", context, status_code=400 if extra.get("error") else 200
        )

    @get("/users", name="admin-users")
    async def users(self, request: Request[Any, Any, Any]) -> Template:
        return await self._render(request)

    @post("/users", status_code=200)
    async def create(
        self,
        request: Request[Any, Any, Any],
        data: URLEncodedBody[NewUserForm],
        settings: NamedDependency[Settings],
    ) -> Template:
        if problem := password_problem(data.password, settings.password_min_length):
            return await self._render(request, error=problem)
        if data.role not in ("member", "admin"):
            return await self._render(request, error="The role is member or admin.")
        try:
            await create_user(data.username, password=data.password, role=data.role)  # type: ignore[arg-type]
        except AccountError as exc:
            return await self._render(request, error=str(exc).capitalize() + ".")
        return await self._render(request, notice=f"Created {normalise_username(data.username)}.")

    @post("/users/{user_id:int}/password", status_code=200)
    async def reset_password(
        self,
        request: Request[Any, Any, Any],
        user_id: FromPath[int],
        data: URLEncodedBody[ResetForm],
        settings: NamedDependency[Settings],
    ) -> Template:
        """Set a new password for someone (it ends their sessions); tell them out of band."""
        if problem := password_problem(data.password, settings.password_min_length):
            return await self._render(request, error=problem)
        user = await set_password(user_id, data.password)
        if user is None:
            raise NotFoundException("No such user.")
        return await self._render(request, notice=f"New password set for {user.username}.")

    @post("/users/{user_id:int}/active", status_code=200)
    async def toggle(self, request: Request[Any, Any, Any], user_id: FromPath[int]) -> Template:
        me = await current_user(request)
        target = await User.objects().where(User.id == user_id).first()
        if target is None:
            raise NotFoundException("No such user.")
        if me is not None and target.id == me.id:
            return await self._render(request, error="You cannot disable your own account.")
        await User.update({User.is_active: not target.is_active}).where(User.id == user_id)
        return await self._render(request)

    @post("/users/{user_id:int}/limits", status_code=200)
    async def limits(
        self,
        request: Request[Any, Any, Any],
        user_id: FromPath[int],
        data: URLEncodedBody[LimitsForm],
    ) -> Template:
        try:
            rpm, tpm = int(data.default_rpm), int(data.default_tpm)
            if not (0 < rpm <= MAX_ID and 0 < tpm <= MAX_ID):  # what the columns hold
                raise ValueError
        except ValueError:
            return await self._render(
                request, error=f"Limits are whole numbers from 1 to {MAX_ID}."
            )
        changed = (
            await User.update({User.default_rpm: rpm, User.default_tpm: tpm})
            .where(User.id == user_id)
            .returning(User.id)
        )
        if not changed:
            raise NotFoundException("No such user.")
        return await self._render(request)

"""Sign in and out, and changing one's own password (server-side sessions, CSRF-protected
forms, failed sign-ins slowed down per account and per address)."""

from __future__ import annotations

import math
from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, URLEncodedBody
from litestar.response import Redirect, Template

from switchboard.accounts.guards import current_user, requires_user, session_for
from switchboard.accounts.services import (
    check_password,
    get_user_by_name,
    normalise_username,
    password_problem,
    set_password,
)
from switchboard.accounts.sessions import start_session
from switchboard.accounts.throttle import SignInThrottle
from switchboard.settings import Settings
from switchboard.web.rendering import page


class SignInForm(msgspec.Struct):
    username: str = ""
    password: str = ""
    next: str = "/chat"


class PasswordForm(msgspec.Struct):
    current: str = ""
    new: str = ""
    repeat: str = ""


def _safe_next(target: str) -> str:
    """Only same-site paths (no open redirect)."""
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/chat"


def client_address(request: Request[Any, Any, Any]) -> str:
    """The client's address (already the forwarded one behind a trusted proxy)."""
    return request.client.host if request.client else "unknown"


class AccountsController(Controller):
    include_in_schema = False

    @get("/", name="root")
    async def root(self, request: Request[Any, Any, Any]) -> Redirect:
        return Redirect("/chat" if await current_user(request) else "/signin", status_code=303)

    @get("/signin", name="signin")
    async def signin_page(
        self, request: Request[Any, Any, Any], next: FromQuery[str] = "/chat"
    ) -> Template:
        return page(request, "signin.html", {"next": _safe_next(next), "error": None})

    @post("/signin", status_code=303)
    async def signin(
        self,
        request: Request[Any, Any, Any],
        data: URLEncodedBody[SignInForm],
        throttle: NamedDependency[SignInThrottle],
    ) -> Redirect | Template:
        name, address = normalise_username(data.username)[:256], client_address(request)
        context = {"next": _safe_next(data.next), "username": data.username.strip()[:64]}
        wait = await throttle.retry_after(name, address)
        if wait > 0:
            error = f"Too many failed attempts. Try again in {math.ceil(wait)} seconds."
            return page(
                request,
                "signin.html",
                {**context, "error": error},
                status_code=429,
                headers={"Retry-After": str(math.ceil(wait))},
            )
        user = await get_user_by_name(name) if name else None
        if not await check_password(user, data.password) or user is None or not user.is_active:
            await throttle.failed(name, address)
            error = "That username and password do not match an active account."
            return page(request, "signin.html", {**context, "error": error}, status_code=400)
        await throttle.succeeded(name, address)
        start_session(request, session_for(user))
        return Redirect(_safe_next(data.next), status_code=303)

    @post("/signout", status_code=303)
    async def signout(self, request: Request[Any, Any, Any]) -> Redirect:
        request.clear_session()
        return Redirect("/signin", status_code=303)

    @get("/account/password", name="password", guards=[requires_user])
    async def password_page(self, request: Request[Any, Any, Any]) -> Template:
        context = {"user": await current_user(request), "error": None, "notice": None}
        return page(request, "account/password.html", context)

    @post("/account/password", status_code=200, guards=[requires_user])
    async def change_password(
        self,
        request: Request[Any, Any, Any],
        data: URLEncodedBody[PasswordForm],
        settings: NamedDependency[Settings],
    ) -> Template:
        user = await current_user(request)
        assert user is not None  # the guard ran
        context: dict[str, Any] = {"user": user, "error": None, "notice": None}
        if not await check_password(user, data.current):
            context["error"] = "The current password is not right."
        elif data.new != data.repeat:
            context["error"] = "The new password and its repetition differ."
        else:
            context["error"] = password_problem(data.new, settings.password_min_length)
        if context["error"]:
            return page(request, "account/password.html", context, status_code=400)
        changed = await set_password(int(user.id), data.new)
        # the sessions of every other browser end (their stamp no longer matches); this one
        # goes on under a new id
        start_session(request, session_for(changed or user))
        context["notice"] = "Your password was changed."
        return page(request, "account/password.html", context)

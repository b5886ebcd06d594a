"""Sign in and sign out (server-side sessions, CSRF-protected forms, throttled failures)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, URLEncodedBody
from litestar.response import Redirect, Template

from switchboard.accounts.guards import current_user
from switchboard.accounts.services import get_user_by_name, verify_password
from switchboard.accounts.throttle import SignInThrottle
from switchboard.web.rendering import page


class SignInForm(msgspec.Struct):
    username: str = ""
    password: str = ""
    next: str = "/chat"


def _safe_next(target: str) -> str:
    """Only same-site paths (no open redirect)."""
    return target if target.startswith("/") and not target.startswith("//") else "/chat"


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
        address = request.client.host if request.client else "?"
        wait = throttle.retry_after(data.username, address)
        context = {"next": _safe_next(data.next), "username": data.username}
        if wait > 0:
            minutes = max(1, round(wait / 60))
            error = f"Too many failed attempts. Try again in {minutes} minute(s)."
            return page(request, "signin.html", {**context, "error": error}, status_code=429)
        user = await get_user_by_name(data.username.strip())
        if (
            user is None
            or not user.is_active
            or not verify_password(user.password_hash, data.password)
        ):
            throttle.failed(data.username, address)
            error = "That username and password do not match an active account."
            return page(request, "signin.html", {**context, "error": error}, status_code=400)
        throttle.succeeded(data.username, address)
        request.clear_session()
        request.set_session({"user_id": int(user.id)})
        return Redirect(_safe_next(data.next), status_code=303)

    @post("/signout", status_code=303)
    async def signout(self, request: Request[Any, Any, Any]) -> Redirect:
        request.clear_session()
        return Redirect("/signin", status_code=303)

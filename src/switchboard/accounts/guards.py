"""Who is signed in (server-side session), and guards for pages that need someone."""

from __future__ import annotations

import hashlib
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from switchboard.accounts.tables import User


def session_for(user: User) -> dict[str, Any]:
    """What a session holds: the user and a stamp of their password hash, so that changing the
    password (or an admin resetting it) ends every session opened before."""
    stamp = hashlib.sha256(f"session:{user.password_hash}".encode()).hexdigest()[:32]
    return {"user_id": int(user.id), "auth": stamp}


async def current_user(request: Request[Any, Any, Any]) -> User | None:
    """The signed-in, active user, or None (a disabled user's session stops working)."""
    cached = request.scope.setdefault("state", {}).get("user")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    user_id = request.session.get("user_id") if "session" in request.scope else None
    if user_id is None:
        return None
    user = await User.objects().where((User.id == user_id) & (User.is_active == True)).first()  # noqa: E712
    if user is None or request.session.get("auth") != session_for(user)["auth"]:
        request.clear_session()
        return None
    request.scope["state"]["user"] = user
    request.scope["state"]["user_id"] = user.id
    return user


async def requires_user(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    if await current_user(connection) is None:  # type: ignore[arg-type]
        raise NotAuthorizedException("Please sign in.")


async def requires_admin(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    user = await current_user(connection)  # type: ignore[arg-type]
    if user is None:
        raise NotAuthorizedException("Please sign in.")
    if user.role != "admin":
        raise PermissionDeniedException("Only administrators can do that.")

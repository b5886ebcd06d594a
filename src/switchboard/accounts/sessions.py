"""Server-side sessions: an opaque random id in an HttpOnly cookie, the data in a shared store
(the database by default, Redis when configured), so every worker and replica sees the same
sign-ins and a redeploy signs nobody out.

Litestar's backend reuses whatever id the browser sends; ours does not:
- an id the store does not know is ignored (an attacker cannot plant one: session fixation);
- a new id is issued on sign-in (``start_session``), and sign-out deletes the session;
- nothing is stored, and no cookie set, for a visitor who has no session data.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.session.base import SessionMiddleware
from litestar.middleware.session.server_side import (
    ServerSideSessionBackend,
    ServerSideSessionConfig,
)
from litestar.stores.base import Store
from litestar.types import Empty, Message, ScopeSession
from litestar.utils.dataclass import extract_dataclass_items

from switchboard.accounts.tables import Session

LOADED_ID = "switchboard.session_id"
"""Scope-state key: the id whose data the store returned for this request."""
ROTATE = "switchboard.session_rotate"


def start_session(request: Request[Any, Any, Any], data: dict[str, Any]) -> None:
    """Sign-in: replace the session under a new id (the old one, if any, is deleted)."""
    request.scope.setdefault("state", {})[ROTATE] = True
    request.set_session(data)


class SessionBackend(ServerSideSessionBackend):
    async def load_from_connection(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> dict[str, Any]:
        session_id = connection.cookies.get(self.config.key)
        if session_id:
            store = self.config.get_store_from_app(connection.scope["app"])
            data = await self.get(session_id, store=store)
            if data is not None:
                connection.scope.setdefault("state", {})[LOADED_ID] = session_id
                return self.deserialize_data(data)
        return {}

    async def store_in_message(
        self,
        scope_session: ScopeSession,
        message: Message,
        connection: ASGIConnection[Any, Any, Any, Any],
    ) -> None:
        state = connection.scope.setdefault("state", {})
        store = self.config.get_store_from_app(connection.scope["app"])
        headers = MutableScopeHeaders.from_message(message)
        cookie_params = dict(
            extract_dataclass_items(self.config, exclude_none=True, include=Cookie.__dict__.keys())
        )
        known: str | None = state.get(LOADED_ID)
        if scope_session is Empty or not scope_session:
            if known:
                await self.delete(known, store=store)
            if connection.cookies.get(self.config.key):
                cookie_params["max_age"] = 0
                cookie = Cookie(value="", key=self.config.key, expires=0, **cookie_params)
                headers.add("Set-Cookie", cookie.to_header(header=""))
            return
        session_id = known
        if known is None or state.get(ROTATE):
            if known:
                await self.delete(known, store=store)
            session_id = self.generate_session_id()
        assert session_id is not None
        await self.set(session_id, self.serialize_data(scope_session, connection.scope), store)
        cookie = Cookie(value=session_id, key=self.config.key, **cookie_params)
        headers.add("Set-Cookie", cookie.to_header(header=""))


def session_middleware(config: ServerSideSessionConfig) -> DefineMiddleware:
    return DefineMiddleware(SessionMiddleware, backend=SessionBackend(config=config))


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _seconds(value: int | dt.timedelta | None) -> float | None:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


class DatabaseStore(Store):
    """Litestar's ``Store`` on the ``sessions`` table (SQLite or PostgreSQL)."""

    async def set(
        self, key: str, value: str | bytes, expires_in: int | dt.timedelta | None = None
    ) -> None:
        data = value.decode() if isinstance(value, bytes) else value
        seconds = _seconds(expires_in)
        expires_at = _utcnow() + dt.timedelta(seconds=seconds) if seconds else None
        await Session.insert(Session(key=key, data=data, expires_at=expires_at)).on_conflict(
            target=Session.key, action="DO UPDATE", values=[Session.data, Session.expires_at]
        )

    async def get(self, key: str, renew_for: int | dt.timedelta | None = None) -> bytes | None:
        row = (
            await Session.select(Session.data, Session.expires_at).where(Session.key == key).first()
        )
        if row is None:
            return None
        if row["expires_at"] is not None and row["expires_at"] <= _utcnow():
            await self.delete(key)
            return None
        seconds = _seconds(renew_for)
        if seconds and row["expires_at"] is not None:
            await Session.update(
                {Session.expires_at: _utcnow() + dt.timedelta(seconds=seconds)}
            ).where(Session.key == key)
        return str(row["data"]).encode()

    async def delete(self, key: str) -> None:
        await Session.delete().where(Session.key == key)

    async def delete_all(self) -> None:
        await Session.delete(force=True)

    async def exists(self, key: str) -> bool:
        return await self.get(key) is not None

    async def expires_in(self, key: str) -> int | None:
        row = await Session.select(Session.expires_at).where(Session.key == key).first()
        if row is None or row["expires_at"] is None:
            return None
        return max(0, int((row["expires_at"] - _utcnow()).total_seconds()))

    async def purge_expired(self) -> int:
        """Delete expired sessions; how many went."""
        gone = await Session.delete().where(Session.expires_at < _utcnow()).returning(Session.key)
        return len(gone)

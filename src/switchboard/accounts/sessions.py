"""Server-side sessions: an opaque random id in an HttpOnly cookie, the data in a shared store
(the database by default, Redis when configured), so every worker and replica sees the same
sign-ins and a redeploy signs nobody out.

Litestar's backend reuses whatever id the browser sends; ours does not:
- an id the store does not know is ignored (an attacker cannot plant one: session fixation),
  and one that is not of our shape is not even looked up;
- a new id is issued on sign-in (``start_session``), and sign-out deletes the session;
- nothing is stored, and no cookie set, for a visitor who has no session data.

When the store cannot be reached (Redis down or too slow), the backend raises
``SessionStoreUnavailable`` and the guard around the session layer answers a 503 page: the
failure happens while the response starts, outside the routes' exception handling, and a
request that cannot tell or keep who is signed in has no other honest answer. A visitor with no
session cookie needs no store, so the sign-in page itself still shows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.session.base import SessionMiddleware
from litestar.middleware.session.server_side import (
    ServerSideSessionBackend,
    ServerSideSessionConfig,
)
from litestar.stores.base import Store
from litestar.types import ASGIApp, Empty, Message, Receive, Scope, ScopeSession, Send
from litestar.utils.dataclass import extract_dataclass_items

from switchboard.accounts.tables import Session
from switchboard.observability.metrics import SHARED_STATE_ERRORS
from switchboard.web.csrf import new_session_token
from switchboard.web.errors import error_page
from switchboard.web.request_id import request_id_of

log = logging.getLogger(__name__)

LOADED_ID = "switchboard.session_id"
"""Scope-state key: the id whose data the store returned for this request."""
ROTATE = "switchboard.session_rotate"
UNAVAILABLE_TITLE = "Sign-in is unavailable"
UNAVAILABLE = (
    "Sign-in is unavailable for a moment: the session store does not answer. Your work is "
    "safe; please try again in a minute."
)
RETRY_AFTER_SECONDS = 30
HEX_DIGITS = frozenset("0123456789abcdef")


class SessionStoreUnavailable(Exception):
    """The session store could not be reached or did not answer in time."""


def start_session(request: Request[Any, Any, Any], data: dict[str, Any]) -> None:
    """Sign-in: replace the session under a new id (the old one, if any, is deleted), with a
    new CSRF token (a token from before, a visitor's too, is refused from now on)."""
    request.scope.setdefault("state", {})[ROTATE] = True
    request.set_session(new_session_token(request, data))


class SessionBackend(ServerSideSessionBackend):
    def __init__(
        self,
        config: ServerSideSessionConfig,
        unavailable: tuple[type[Exception], ...] = (),
        shared: bool = False,
    ) -> None:
        """``unavailable``: what the store raises when it cannot be reached (redis-py's
        connection errors and timeouts, or the database's). ``shared``: the store is Redis,
        whose failures count as shared-state errors."""
        super().__init__(config=config)
        self.unavailable = unavailable
        self.shared = shared

    @contextlib.contextmanager
    def _reaching_store(self) -> Iterator[None]:
        try:
            yield
        except self.unavailable as exc:
            raise SessionStoreUnavailable(str(exc)) from exc

    def well_formed(self, session_id: str) -> bool:
        """An id this backend could have issued (hex of ``session_id_bytes``). Anything else is
        never looked up: a NUL in it is an error to PostgreSQL, and no such session exists."""
        return len(session_id) == 2 * self.config.session_id_bytes and all(
            c in HEX_DIGITS for c in session_id
        )

    async def load_from_connection(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> dict[str, Any]:
        session_id = connection.cookies.get(self.config.key)
        if session_id and self.well_formed(session_id):
            store = self.config.get_store_from_app(connection.scope["app"])
            with self._reaching_store():
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
                with self._reaching_store():
                    await self.delete(known, store=store)
            if connection.cookies.get(self.config.key):
                cookie_params["max_age"] = 0
                cookie = Cookie(value="", key=self.config.key, expires=0, **cookie_params)
                headers.add("Set-Cookie", cookie.to_header(header=""))
            return
        session_id = known
        with self._reaching_store():
            if known is None or state.get(ROTATE):
                if known:
                    await self.delete(known, store=store)
                session_id = self.generate_session_id()
            assert session_id is not None
            await self.set(session_id, self.serialize_data(scope_session, connection.scope), store)
        cookie = Cookie(value=session_id, key=self.config.key, **cookie_params)
        headers.add("Set-Cookie", cookie.to_header(header=""))


class GuardedSessionMiddleware:
    """Litestar's session middleware, and around it the guard: ``SessionStoreUnavailable``
    before the response has started becomes a 503 page (HTML, or JSON for a JSON client),
    counted in ``switchboard_shared_state_errors_total{feature="sessions"}``."""

    def __init__(self, app: ASGIApp, backend: SessionBackend) -> None:
        self.app = SessionMiddleware(app, backend=backend)
        self.shared = backend.shared

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            # Raised while the response starts, it reaches us wrapped: the route's exception
            # middleware counts a response as started before the session layer has sent it.
            failure = _store_failure(exc)
            if failure is None:
                raise
            if self.shared:  # a database outage shows in readiness and the error logs instead
                SHARED_STATE_ERRORS.labels("sessions").inc()
            extra = {"request_id": request_id_of(scope), "error": str(failure)}
            log.warning("session store unavailable: answered 503", extra=extra)
            if started or scope["type"] != ScopeType.HTTP:
                raise
            request: Request[Any, Any, Any] = Request(scope, receive, send)
            headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
            response = error_page(request, 503, UNAVAILABLE, headers, title=UNAVAILABLE_TITLE)
            await response.to_asgi_response(None, request)(scope, receive, send)


def _store_failure(exc: BaseException | None) -> SessionStoreUnavailable | None:
    while exc is not None:
        if isinstance(exc, SessionStoreUnavailable):
            return exc
        exc = exc.__cause__
    return None


def session_middleware(
    config: ServerSideSessionConfig,
    unavailable: tuple[type[Exception], ...] = (),
    shared: bool = False,
) -> DefineMiddleware:
    backend = SessionBackend(config=config, unavailable=unavailable, shared=shared)
    return DefineMiddleware(GuardedSessionMiddleware, backend=backend)


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

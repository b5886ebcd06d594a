"""Cross-site request forgery: two independent checks on every state-changing request of the
workspace (any method but GET, HEAD, OPTIONS and TRACE).

1. **Where it comes from**, as Go's ``net/http.CrossOriginProtection`` decides (the browsers'
   Fetch Metadata first, then ``Origin``, as OWASP's cheat sheet recommends): ``Sec-Fetch-Site:
   same-origin`` or ``none`` (typed by the person) passes, any other value is refused; without
   it, an ``Origin`` header must name this host (its ``Host`` header) or
   ``SWITCHBOARD_PUBLIC_URL``; with neither header the request is not a browser's, or from one
   too old to send them (curl, scripts): the token alone decides, as in Django and Rails.
2. **A token** the request repeats in the ``x-csrftoken`` header (htmx) or the ``_csrf_token``
   form field. Signed in, it is the token kept in the session (OWASP's synchronizer token, as
   Rails keeps it): a new one at every sign-in, and a token of another session is refused. A
   visitor (the sign-in form) has no session: their token is a signed random value that a
   cookie must repeat (a signed double-submit cookie, as Litestar's own CSRF middleware does).

The ``csrftoken`` cookie always holds the current token (HttpOnly: pages carry it in their
forms), so that scripts signing in over plain HTTP find it; a browser that lost the cookie gets
it again with its next page. Templates use ``csrf_token()`` and ``csrf_field()``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from litestar import Request
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.exceptions import PermissionDeniedException
from litestar.middleware import ASGIMiddleware
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from markupsafe import Markup

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
SESSION_KEY = "csrf"
"""Where the session keeps its token."""
HEADER = "x-csrftoken"
FORM_FIELD = "_csrf_token"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
TOKEN_STATE = "switchboard.csrf_token"  # noqa: S105 - a key, not a secret  # nosec B105
"""Scope-state key: the token of this request (what the templates render)."""
RANDOM_BYTES = 32
FOREIGN = (
    "This request came from another site ({origin}), so it was refused: Switchboard takes "
    "changes only from its own pages. Open Switchboard itself and try again there."
)
EXPIRED = (
    "This form has expired or did not come from your Switchboard session (its security token "
    "does not match). Reload the page and try again."
)


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased, as browsers write ``Origin``."""
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def _same(given: str, expected: str) -> bool:
    """Constant-time, whatever characters ``given`` holds (``compare_digest`` refuses non-ASCII
    text: a header of Latin-1 would be a 500)."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


def new_session_token(request: Request[Any, Any, Any], data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with a new token (at sign-in), which is also the token this request renders."""
    token = secrets.token_hex(RANDOM_BYTES)
    request.scope.setdefault("state", {})[TOKEN_STATE] = token
    return {**data, SESSION_KEY: token}


def _token_of(context: Mapping[str, Any]) -> str:
    request = context.get("request")
    if request is None:
        return ""
    return str(request.scope.get("state", {}).get(TOKEN_STATE, ""))


def _field_of(context: Mapping[str, Any]) -> Markup:
    return Markup('<input type="hidden" name="{}" value="{}">').format(
        FORM_FIELD, _token_of(context)
    )


def register_template_callables(engine: JinjaTemplateEngine) -> None:
    """``csrf_token()`` (for htmx's header) and ``csrf_field()`` (a form's hidden input), in
    place of Litestar's (which read the token of its own middleware)."""
    engine.register_template_callable("csrf_token", _token_of)
    engine.register_template_callable("csrf_field", _field_of)


class CSRFGuard(ASGIMiddleware):
    """Runs inside the session middleware (it reads the session's token)."""

    scopes = (ScopeType.HTTP,)

    def __init__(
        self,
        secret: str,
        cookie_name: str,
        *,
        secure: bool,
        trusted_origins: Iterable[str] = (),
        exclude: Sequence[str] = (),
    ) -> None:
        self.secret = secret.encode()
        self.cookie_name = cookie_name
        self.secure = secure
        self.trusted_origins = frozenset(o for o in map(origin_of, trusted_origins) if o)
        skipped = re.compile("|".join(exclude)) if exclude else None
        self.should_bypass_for_scope = lambda scope: bool(skipped and skipped.search(scope["path"]))

    # --- visitors' signed tokens -----------------------------------------------------------

    def _signature(self, random_part: str) -> str:
        return hmac.new(self.secret, random_part.encode(), hashlib.sha256).hexdigest()

    def new_visitor_token(self) -> str:
        random_part = secrets.token_hex(RANDOM_BYTES)
        return random_part + self._signature(random_part)

    def signed(self, token: str) -> bool:
        random_part, signature = token[: 2 * RANDOM_BYTES], token[2 * RANDOM_BYTES :]
        return len(signature) == 64 and _same(signature, self._signature(random_part))

    # --- the checks ------------------------------------------------------------------------

    def refusal(self, request: Request[Any, Any, Any]) -> str | None:
        """Why a state-changing request is refused as cross-origin, or None."""
        site = request.headers.get("sec-fetch-site", "").strip().lower()
        origin = request.headers.get("origin", "").strip()
        if site in ("same-origin", "none"):
            return None
        if not site and not origin:  # not a browser, or one too old to send either
            return None
        if origin_of(origin) in self.trusted_origins:
            return None
        if not site and urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower():
            return None  # the scheme is not compared: behind a proxy the app may see http
        return FOREIGN.format(origin=origin[:200] or "cross-site")

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        request: Request[Any, Any, Any] = Request(scope, receive)
        session = scope.get("session")
        session = session if isinstance(session, dict) else {}
        bound = session.get(SESSION_KEY)
        cookie = request.cookies.get(self.cookie_name)
        visitor = cookie if cookie and self.signed(cookie) else None
        if request.method not in SAFE_METHODS:
            if (why := self.refusal(request)) is not None:
                raise PermissionDeniedException(why)
            given, form = request.headers.get(HEADER), None
            if not given and request.content_type[0] in FORM_TYPES:
                form = await request.form()
                given = value if isinstance(value := form.get(FORM_FIELD), str) else None
            expected = bound if isinstance(bound, str) else visitor
            if not (expected and given and _same(given, expected)):
                if form is not None:  # no route will: its uploads would stay open
                    await form.close()
                raise PermissionDeniedException(EXPIRED)
            token = expected
        elif isinstance(bound, str):
            token = bound
        elif session:  # signed in before sessions kept a token: keep one from now on
            request.set_session(new_session_token(request, session))
            token = request.scope["state"][TOKEN_STATE]
        else:
            token = visitor or self.new_visitor_token()
        scope.setdefault("state", {})[TOKEN_STATE] = token
        await next_app(scope, receive, self._keeping_cookie(scope, send, cookie))

    def _keeping_cookie(self, scope: Scope, send: Send, cookie: str | None) -> Send:
        """The cookie follows the request's final token: a sign-in makes a new one, and a
        session that ended (signed out, password changed elsewhere) leaves a visitor's."""

        async def wrapped(message: Message) -> None:
            if message["type"] != "http.response.start":
                await send(message)
                return
            state = scope.setdefault("state", {})
            token = state.get(TOKEN_STATE)
            session = scope.get("session")
            if token and not (isinstance(session, dict) and session) and not self.signed(token):
                token = state[TOKEN_STATE] = self.new_visitor_token()
            if token and token != cookie:
                fresh = Cookie(
                    key=self.cookie_name,
                    value=token,
                    path="/",
                    secure=self.secure,
                    httponly=True,
                    samesite="lax",
                )
                MutableScopeHeaders.from_message(message).add(
                    "set-cookie", fresh.to_header(header="")
                )
            await send(message)

        return wrapped

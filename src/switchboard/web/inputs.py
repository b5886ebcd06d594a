"""What no route of the workspace can take, refused before any handler runs (one hook for the
whole app, so a new route is covered the day it is added):

- an id in the path beyond what the id columns hold (PostgreSQL's integer ends at 2^31 - 1,
  SQLite's at 2^63 - 1; either would be a database error): 404, as for any missing id;
- a NUL character in the path, or a part of it longer than a file name can be (no file or id
  has either: 404; the static files' router would fail on both), or a NUL in a query or form
  field (400 that names the field). PostgreSQL cannot store NUL in text, and no person types
  one.

The ``/v1`` API is the gateway's: it answers in its own error shape, so it is left out here.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from litestar import Request
from litestar.datastructures import UploadFile
from litestar.exceptions import ClientException, NotFoundException

MAX_ID = 2**31 - 1
"""The largest id (and whole number in a form) every supported database's integer holds."""
NUL = "\x00"
MAX_NAME_BYTES = 255
"""The longest file name Linux and macOS file systems take."""
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

BeforeRequest = Callable[[Request[Any, Any, Any]], Awaitable[None]]


def nul_refused(where: str) -> ClientException:
    return ClientException(
        f"The {where} holds a NUL character (\\0), which no text here can contain: "
        "remove it and try again."
    )


def _first_with_nul(pairs: Iterable[tuple[str, Any]]) -> str | None:
    for name, value in pairs:
        if NUL in name or (isinstance(value, str) and NUL in value):
            return name.replace(NUL, "\\0")
    return None


def _overlong(path: str) -> bool:
    """A part of a path no file system takes (a static file's: the OS refuses the name)."""
    return any(len(part.encode()) > MAX_NAME_BYTES for part in path.split("/"))


def refuse_hostile_input(skip: re.Pattern[str]) -> BeforeRequest:
    """The app's ``before_request`` hook; paths matching ``skip`` (the API) are left alone."""

    async def check(request: Request[Any, Any, Any]) -> None:
        if skip.search(request.url.path):
            return
        for value in request.path_params.values():
            if isinstance(value, int) and not 0 < value <= MAX_ID:
                raise NotFoundException("That does not exist.")
            if NUL in str(value) or _overlong(str(value)):
                raise NotFoundException("That does not exist.")
        if (name := _first_with_nul(request.query_params.multi_items())) is not None:
            raise nul_refused(f"query parameter {name!r}")
        if request.method in ("GET", "HEAD") or request.content_type[0] not in FORM_TYPES:
            return
        form = await request.form()  # parsed once: the handler reads it from the request
        fields = [(k, v) for k, v in form.multi_items() if not isinstance(v, UploadFile)]
        if (name := _first_with_nul(fields)) is not None:
            raise nul_refused(f"field {name!r}")

    return check

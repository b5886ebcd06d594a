"""A signed-in browser session over plain HTTP: cookies, the CSRF token, htmx headers."""

from __future__ import annotations

import re
import ssl
from types import TracebackType
from typing import Any

import httpx


class WebSession:
    """Close it (``with WebSession(url) as session`` or the ``web`` fixture): it holds sockets."""

    def __init__(
        self,
        base_url: str,
        verify: ssl.SSLContext | bool = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.http = httpx.Client(
            base_url=base_url,
            follow_redirects=False,
            timeout=180,
            verify=verify,
            transport=transport,
        )

    def __enter__(self) -> WebSession:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def csrf(self) -> str:
        """The CSRF cookie's value (``__Host-csrftoken`` behind HTTPS)."""

        def token() -> str | None:
            names = ("csrftoken", "__Host-csrftoken")
            return next((v for k, v in self.http.cookies.items() if k in names), None)

        if token() is None:
            self.http.get("/signin")
        return str(token())

    def get(self, path: str, *, htmx: bool = False) -> httpx.Response:
        return self.http.get(path, headers={"hx-request": "true"} if htmx else {})

    def post(
        self, path: str, data: dict[str, Any] | None = None, *, htmx: bool = False
    ) -> httpx.Response:
        headers = {"x-csrftoken": self.csrf()}
        if htmx:
            headers["hx-request"] = "true"
        return self.http.post(path, data=data or {}, headers=headers)

    def sign_in(self, username: str, password: str) -> httpx.Response:
        return self.post("/signin", {"username": username, "password": password, "next": "/chat"})

    def new_conversation(self) -> int:
        response = self.post("/chat/new")
        assert response.status_code == 303, response.text
        return int(response.headers["location"].rsplit("/", 1)[1])

    def stream_events(self, path: str) -> list[tuple[str, str]]:
        """(event, data) pairs of a whole SSE response."""
        events: list[tuple[str, str]] = []
        with self.http.stream("GET", path) as response:
            assert response.status_code == 200
            text = "".join(response.iter_text())
        for block in text.split("\n\n"):
            name = re.search(r"^event: (.*)$", block, re.MULTILINE)
            data = "\n".join(line[6:] for line in block.splitlines() if line.startswith("data: "))
            if name:
                events.append((name.group(1), data))
        return events

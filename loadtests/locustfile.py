"""Locust scenarios against a running Switchboard (``make loadtest`` starts one and provisions
the accounts; for another target pass them in the environment):

- ``BrowserUser``: signs in, opens a conversation, sends a message through the htmx endpoint
  and follows the answer's SSE stream to the end; the time to the first token is recorded as
  the pseudo-request ``TTFT chat``.
- ``ApiClient``: ``/v1/chat/completions`` with a key, streaming (``TTFT api`` recorded) and not.
- ``CacheFriendly``: the same deterministic request again and again (cache hits).
- ``AbusiveClient``: a key with a tiny limit, sent as fast as it goes; every refusal must be a
  429 with ``Retry-After``, and anything 5xx is a failure.

Environment: ``LOADTEST_USERNAME``/``LOADTEST_PASSWORD``, ``LOADTEST_KEY``,
``LOADTEST_ABUSE_KEY``, ``LOADTEST_MODEL``, ``LOADTEST_MAX_TOKENS`` (32).
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any

from locust import FastHttpUser, HttpUser, between, constant, events, task

MODEL = os.environ.get("LOADTEST_MODEL", "smollm2-135m-instruct")
MAX_TOKENS = int(os.environ.get("LOADTEST_MAX_TOKENS", "32"))
STREAM_URL = re.compile(r'sse-connect="([^"]+)"')
STREAMS: list[dict[str, float]] = []
"""One entry per finished stream: ttft and duration in seconds, completion tokens."""


def record(name: str, started: float, failure: Exception | None = None) -> None:
    # locust's EventHook.fire has no annotations (it takes the handlers' keywords)
    events.request.fire(  # type: ignore[no-untyped-call]
        request_type="TTFT",
        name=name,
        response_time=(time.monotonic() - started) * 1000,
        response_length=0,
        exception=failure,
        context={},
    )


class BrowserUser(HttpUser):
    """A person in the workspace. ``HttpUser`` (requests) because the SSE stream is read
    line by line."""

    weight = 3
    wait_time = between(2, 5)

    def on_start(self) -> None:
        self.client.get("/signin", name="/signin")
        token = self.client.cookies.get("csrftoken") or ""
        self.client.headers["x-csrftoken"] = token
        response = self.client.post(
            "/signin",
            name="/signin (POST)",
            allow_redirects=False,
            data={
                "username": os.environ.get("LOADTEST_USERNAME", "loadtest"),
                "password": os.environ.get("LOADTEST_PASSWORD", ""),
                "next": "/chat",
            },
        )
        if response.status_code != 303:
            raise RuntimeError(f"sign-in failed: {response.status_code}")
        # signing in makes a new CSRF token (bound to the session); the cookie carries it
        self.client.headers["x-csrftoken"] = self.client.cookies.get("csrftoken") or ""
        new = self.client.post("/chat/new", name="/chat/new", allow_redirects=False)
        self.conversation = new.headers["location"].rsplit("/", 1)[1]

    @task
    def ask(self) -> None:
        self.client.get(f"/chat/{self.conversation}", name="/chat/{id}")
        sent = self.client.post(
            f"/chat/{self.conversation}/messages",
            name="/chat/{id}/messages",
            data={"content": "Give me three tips for writing clear emails."},
            headers={"hx-request": "true"},
        )
        found = STREAM_URL.search(sent.text)
        if not found:
            return
        started = time.monotonic()
        first: float | None = None
        with self.client.get(
            found.group(1), name="/chat/{id}/messages/{id}/stream", stream=True, catch_response=True
        ) as stream:
            for line in stream.iter_lines(decode_unicode=True):
                # the first text on the page: a raw delta, or a re-rendered partial answer
                if line in ("event: delta", "event: partial") and first is None:
                    first = time.monotonic()
                    record("chat", started)
                if line == "event: done":
                    break
            stream.success()
        if first is not None:
            STREAMS.append(
                {"ttft": first - started, "duration": time.monotonic() - started, "tokens": 0.0}
            )


def chat_body(stream: bool, **extra: Any) -> dict[str, Any]:
    body = {
        "model": MODEL,
        "max_tokens": MAX_TOKENS,
        "stream": stream,
        "messages": [{"role": "user", "content": "Name a colour and a fruit."}],
        **extra,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


class ApiClient(HttpUser):
    weight = 2
    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.auth = {"Authorization": f"Bearer {os.environ.get('LOADTEST_KEY', '')}"}

    @task(2)
    def streaming(self) -> None:
        started = time.monotonic()
        first: float | None = None
        tokens = 0.0
        with self.client.post(
            "/v1/chat/completions",
            json=chat_body(True),
            headers=self.auth,
            name="/v1/chat/completions (stream)",
            stream=True,
            catch_response=True,
        ) as response:
            for line in response.iter_lines(decode_unicode=True):
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if chunk.get("usage") and not chunk.get("choices"):
                    tokens = float(chunk["usage"]["completion_tokens"])
                elif first is None:
                    first = time.monotonic()
                    record("api", started)
            if response.status_code == 200:
                response.success()
        if first is not None:
            STREAMS.append(
                {"ttft": first - started, "duration": time.monotonic() - started, "tokens": tokens}
            )

    @task(1)
    def whole(self) -> None:
        self.client.post(
            "/v1/chat/completions",
            json=chat_body(False),
            headers=self.auth,
            name="/v1/chat/completions",
        )


class CacheFriendly(FastHttpUser):
    weight = 1
    wait_time = between(1, 2)

    def on_start(self) -> None:
        self.auth = {"Authorization": f"Bearer {os.environ.get('LOADTEST_KEY', '')}"}

    @task
    def repeat(self) -> None:
        body = chat_body(False, temperature=0, seed=7)
        self.client.post(
            "/v1/chat/completions",
            json=body,
            headers=self.auth,
            name="/v1/chat/completions (cacheable)",
        )


class AbusiveClient(FastHttpUser):
    weight = 1
    wait_time = constant(0.05)

    def on_start(self) -> None:
        self.auth = {"Authorization": f"Bearer {os.environ.get('LOADTEST_ABUSE_KEY', '')}"}

    @task
    def hammer(self) -> None:
        with self.client.post(
            "/v1/chat/completions",
            json=chat_body(False),
            headers=self.auth,
            name="/v1/chat/completions (over its limit)",
            catch_response=True,
        ) as response:
            if response.status_code == 429 and response.headers.get("retry-after"):
                response.success()  # refused the right way
            elif response.status_code == 200:
                response.success()
            else:
                response.failure(f"{response.status_code} (expected 200, or 429 + Retry-After)")


@events.test_stop.add_listener  # type: ignore[untyped-decorator]  # locust's add_listener has no annotations
def save_streams(environment: Any, **_: Any) -> None:
    path = os.environ.get("LOADTEST_STREAMS_FILE")
    if path:
        with open(path, "w") as out:
            json.dump(STREAMS, out)

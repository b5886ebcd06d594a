"""Clients of the gateway replicas, as a load balancer in front of them would spread them: each
request goes to the next gateway, and one that refuses the connection (stopped, crashed) is
skipped for the next, which is safe because the request never reached it. Every outcome is
kept: which gateway, the status, the request id, and whether a failure was a clean OpenAI
error (an error JSON with a 5xx, or an error event inside a stream) or anything else."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.scale import netns

CHAT = "/v1/chat/completions"
CONNECT_TIMEOUT = 3.0
"""Seconds to connect to a gateway: a stopped container's address answers nothing at all."""


@dataclass
class Outcome:
    gateway: str
    status: int
    """HTTP status; 0 when no gateway answered at all."""
    request_id: str
    started: float
    ended: float
    stream: bool
    answered: bool
    """A whole answer: 200 and, for a stream, its [DONE] without an error event before it."""
    clean_error: bool = False
    """Failed with OpenAI's error shape: ``{"error": {"message", "type", ...}}``."""
    error: str = ""
    cache: str = ""


def openai_error(payload: Any) -> bool:
    error = payload.get("error") if isinstance(payload, dict) else None
    return isinstance(error, dict) and bool(error.get("message")) and bool(error.get("type"))


@dataclass
class Gateways:
    """The gateway replicas' base URLs, and the API key every request carries."""

    urls: list[str]
    key: str
    namespace: str | None = None
    """The network namespace the load's clients speak from (netns.py); None: this one."""
    timeout: float = 120.0
    _turn: Iterator[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def next_order(self) -> list[str]:
        with self._lock:
            start = next(self._turn) % len(self.urls)
        return self.urls[start:] + self.urls[:start]

    def send(
        self, body: dict[str, Any], *, key: str | None = None, to: str | None = None
    ) -> Outcome:
        """POST a chat completion to ``to``, or to the next gateway that takes the connection."""
        headers = {"Authorization": f"Bearer {key or self.key}"}
        started = time.monotonic()
        last = "no gateway"
        for url in [to] if to else self.next_order():
            timeout = httpx.Timeout(self.timeout, connect=CONNECT_TIMEOUT)
            try:
                with httpx.Client(base_url=url, timeout=timeout) as client:
                    return self._exchange(client, url, body, headers, started)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # never reached: next one
                last = f"{url}: {exc!r}"
                continue
            except httpx.HTTPError as exc:  # reached, then lost: the caller sees a failure
                return Outcome(
                    url,
                    0,
                    "",
                    started,
                    time.monotonic(),
                    bool(body.get("stream")),
                    answered=False,
                    error=f"{type(exc).__name__}: {exc}",
                )
        return Outcome(
            "",
            0,
            "",
            started,
            time.monotonic(),
            bool(body.get("stream")),
            answered=False,
            error=last,
        )

    @staticmethod
    def _exchange(
        client: httpx.Client,
        url: str,
        body: dict[str, Any],
        headers: dict[str, str],
        started: float,
    ) -> Outcome:
        stream = bool(body.get("stream"))
        with client.stream("POST", CHAT, json=body, headers=headers) as response:
            request_id = response.headers.get("x-request-id", "")
            cache = response.headers.get("x-cache", "")
            raw = response.read()
        ended = time.monotonic()
        outcome = Outcome(
            url,
            response.status_code,
            request_id,
            started,
            ended,
            stream,
            answered=False,
            cache=cache,
        )
        if response.status_code != 200:
            try:
                outcome.clean_error = openai_error(json.loads(raw))
            except ValueError:
                outcome.clean_error = False
            outcome.error = raw[:300].decode(errors="replace")
            return outcome
        if not stream:
            payload = json.loads(raw)
            outcome.answered = bool(payload.get("choices"))
            return outcome
        events = [line[6:] for line in raw.decode().splitlines() if line.startswith("data: ")]
        errors = [e for e in events if e != "[DONE]" and openai_error(json.loads(e))]
        if errors:
            outcome.clean_error = events[-1] == "[DONE]"
            outcome.error = errors[0][:300]
        else:
            outcome.answered = bool(events) and events[-1] == "[DONE]"
            if not outcome.answered:
                outcome.error = f"stream ended without [DONE] after {len(events)} events"
        return outcome


@dataclass
class Load:
    """``request(n)`` for n = 0, 1, … by ``workers`` clients at once, until stopped (or until
    ``count`` are done)."""

    request: Callable[[int], Outcome]
    workers: int = 4
    namespace: str | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _numbers: Iterator[int] = field(default_factory=itertools.count)
    _pool: ThreadPoolExecutor | None = None

    def _client(self, count: int | None) -> None:
        while not self._stop.is_set():
            with self._lock:
                number = next(self._numbers)
                if count is not None and number >= count:
                    return
            outcome = self.request(number)
            with self._lock:
                self.outcomes.append(outcome)

    def start(self, count: int | None = None) -> Load:
        namespace = self.namespace
        self._pool = ThreadPoolExecutor(
            self.workers,
            thread_name_prefix="load",
            initializer=(lambda: netns.enter(namespace)) if namespace else None,
        )
        for _ in range(self.workers):
            self._pool.submit(self._client, count)
        return self

    def stop(self) -> list[Outcome]:
        self._stop.set()
        return self.wait()

    def __enter__(self) -> Load:
        return self

    def __exit__(self, *_: object) -> None:
        """Whatever happened in the test (a failed wait, Ctrl-C), the clients stop: their
        threads would otherwise keep the test process alive, sending for ever."""
        if self._pool is not None:
            self.stop()

    def wait(self) -> list[Outcome]:
        assert self._pool is not None
        self._pool.shutdown(wait=True)
        return sorted(self.outcomes, key=lambda o: o.started)

    def finished(self) -> int:
        with self._lock:
            return len(self.outcomes)


def overlapping(outcomes: list[Outcome], start: float, end: float) -> list[Outcome]:
    """The outcomes of the requests that were under way at some moment from ``start`` to
    ``end``."""
    return [o for o in outcomes if o.started < end and o.ended > start]


def run(
    request: Callable[[int], Outcome], count: int, workers: int = 4, namespace: str | None = None
) -> list[Outcome]:
    """``count`` requests, ``workers`` at a time; their outcomes in the order they started."""
    with Load(request, workers, namespace=namespace) as load:
        return load.start(count).wait()

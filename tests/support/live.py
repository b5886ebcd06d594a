"""Run the app on a real socket under granian, the production server, so tests talk HTTP to it
like clients do. Granian's embedded server runs on an event loop in a thread of the test process,
so a test can also run coroutines where the app's database pool lives (``LiveServer.run``)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from typing import Any, TypeVar

from granian.constants import Interfaces
from granian.log import LogLevels
from granian.server.embed import Server
from litestar import Litestar

from tests.support.waiting import wait_for

T = TypeVar("T")
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

STARTUP_TIMEOUT = 120.0
"""Seconds the app's lifespan startup may take (it migrates the database) on a busy machine."""
SHUTDOWN_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LifespanWatch:
    """The app, telling the test thread when its lifespan startup and shutdown have finished
    (granian's embedded server has no "started" flag to poll)."""

    def __init__(self, app: Litestar) -> None:
        self.app = app
        self.started = threading.Event()
        self.stopped = threading.Event()
        self.failure: str | None = None

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            # the server's plain dicts, where Litestar's __call__ names its Scope TypedDicts
            await self.app(scope, receive, send)  # type: ignore[arg-type]
            return

        async def watched(message: Message) -> None:
            await send(message)
            kind = message["type"]
            if kind == "lifespan.startup.failed":
                self.failure = str(message.get("message") or "lifespan startup failed")
            if kind.startswith("lifespan.startup."):
                self.started.set()
            elif kind.startswith("lifespan.shutdown."):
                self.stopped.set()

        try:
            await self.app(scope, receive, watched)  # type: ignore[arg-type]  # as above
        except BaseException as error:
            self.failure = self.failure or repr(error)
            raise
        finally:
            self.started.set()
            self.stopped.set()


class LiveServer:
    def __init__(self, app: Litestar, port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        self.lifespan = LifespanWatch(app)
        self.server = Server(
            self.lifespan,
            address="127.0.0.1",
            port=self.port,
            interface=Interfaces.ASGI,  # with lifespan: the app opens its pools on startup
            log_level=LogLevels.warning,
            log_access=False,
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._serve, daemon=True, name=f"app-{self.port}")
        self.error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.server.serve())
        except BaseException as error:
            self.error = error
        finally:
            self.lifespan.started.set()  # never leave start() waiting on a server that is gone
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
            self.loop.close()

    def start(self, timeout: float = STARTUP_TIMEOUT) -> LiveServer:
        """Serve in a thread; return once the app's lifespan startup has completed."""
        self.thread.start()
        if not self.lifespan.started.wait(timeout):
            self.stop()
            raise RuntimeError(f"the app did not finish starting within {timeout:.0f}s")
        if self.lifespan.failure or not self.thread.is_alive():
            self.stop()
            raise RuntimeError(f"the app did not start: {self.lifespan.failure or self.error!r}")
        # the lifespan can finish before granian accepts connections: wait for the socket too
        try:
            wait_for(self._accepts, f"the app accepts connections on {self.port}", timeout, 0.05)
        except (AssertionError, RuntimeError):
            self.stop()
            raise
        return self

    def _accepts(self) -> bool:
        if not self.thread.is_alive():
            raise RuntimeError(f"the app stopped: {self.error!r}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2):
                return True
        except OSError:
            return False

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        """Run a coroutine on the server's loop (where its database pool lives)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        """Stop serving and wait until the app's lifespan shutdown has run and the thread ended."""
        if self.thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop closed on its own meanwhile
                self.loop.call_soon_threadsafe(self.server.stop)
            self.thread.join(SHUTDOWN_TIMEOUT)
        if self.thread.is_alive():
            raise RuntimeError(f"the app did not stop within {SHUTDOWN_TIMEOUT:.0f}s")
        if self.thread.ident is not None and not self.lifespan.stopped.is_set():
            raise RuntimeError("the server stopped without running the app's lifespan shutdown")

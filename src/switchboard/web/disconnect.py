"""A caller that went away before its answer."""

from __future__ import annotations

import asyncio


class ClientDisconnected(asyncio.CancelledError):
    """Raised where a handler notices that its caller has gone. It unwinds like a cancellation
    (past every ``except Exception``: there is nobody to send an error page to), and the
    outermost wrapper (observability's access middleware) ends the request quietly as a 499,
    nginx's "client closed request", instead of letting the server log it as a crash."""


CLIENT_CLOSED_REQUEST = 499

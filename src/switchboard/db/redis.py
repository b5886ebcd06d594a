"""The Redis client every shared-state user gets (cache, limits, throttle, sessions)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis


MAX_CONNECTIONS = 200
"""Connections a worker opens to one Redis at most. More calls at once wait for one."""


def redis_client(url: str, timeout: float, max_connections: int = MAX_CONNECTIONS) -> Redis:
    """A client whose every call has a socket timeout: a hung Redis fails fast, never hangs a
    request. No CLIENT SETINFO handshake: a connection that hangs during it is never closed by
    redis-py; with none, every timeout closes its connection.

    The pool blocks: a burst of more calls than connections waits (up to ``timeout``) for one.
    redis-py's default pool raises at once instead, and the callers fail open on that error,
    so a burst of requests would pass their budgets and rate limits unchecked."""
    from redis.asyncio import BlockingConnectionPool, Redis
    from redis.driver_info import DriverInfo
    from redis.maint_notifications import MaintNotificationsConfig

    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry_on_timeout=False,
        driver_info=DriverInfo(name=None, lib_version=None),
        # no CLIENT MAINT_NOTIFICATIONS round trip per new connection (a managed cluster's
        # feature): a burst opens many connections at once, each must be quick to set up
        maint_notifications_config=MaintNotificationsConfig(enabled=False),
    )
    return Redis.from_pool(pool)


def connection_errors() -> tuple[type[Exception], ...]:
    """What redis-py raises when Redis cannot be reached or does not answer in time."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return (RedisConnectionError, RedisTimeoutError)


def shared_state_errors() -> tuple[type[Exception], ...]:
    """What a call to the shared store raises when Redis fails: unreachable, slow, full (a
    command refused under ``noeviction``), or a reply that is not what a script returns. The
    callers fail open on these, and only on these: any other error is a bug and propagates.
    Without redis-py installed (no Redis configured) only the socket's errors."""
    try:
        from redis.exceptions import RedisError
    except ImportError:  # pragma: no cover - the redis extra is not installed
        return (OSError,)
    return (RedisError, OSError, ValueError)

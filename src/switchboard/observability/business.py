"""Business gauges, refreshed every ``interval`` seconds from figures a feature computes.

Observability does not read the features' tables: the app passes in the function that computes
the figures (``switchboard.usage.business.business_figures``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import msgspec

from switchboard.observability.metrics import (
    ACTIVE_KEYS,
    ACTIVE_USERS,
    REQUESTS_TODAY,
    TOKENS_TODAY,
    TOP_KEY_TOKENS,
    TOP_USER_TOKENS,
    timed,
)

log = logging.getLogger(__name__)


class BusinessFigures(msgspec.Struct, frozen=True, kw_only=True):
    active_users: dict[str, int]
    """Distinct users with usage in each window (``"1d"``, ``"7d"``)."""
    requests_today: int
    tokens_today: int
    active_keys: int
    top_users: list[tuple[str, int]]
    """(username, tokens today), the largest first."""
    top_keys: list[tuple[str, int]]
    """(key label, tokens today), the largest first."""


FiguresSource = Callable[[], Awaitable[BusinessFigures]]


def publish(figures: BusinessFigures) -> None:
    ACTIVE_USERS.replace({(window,): users for window, users in figures.active_users.items()})
    REQUESTS_TODAY.set(figures.requests_today)
    TOKENS_TODAY.set(figures.tokens_today)
    ACTIVE_KEYS.set(figures.active_keys)
    for gauge, ranking in (
        (TOP_USER_TOKENS, figures.top_users),
        (TOP_KEY_TOKENS, figures.top_keys),
    ):
        ranks = enumerate(ranking, start=1)
        gauge.replace({(str(rank), name): tokens for rank, (name, tokens) in ranks})


async def refresh_forever(interval: float, source: FiguresSource) -> None:
    while True:
        try:
            with timed("business_aggregates"):
                figures = await source()
            publish(figures)
        except Exception:
            log.exception("business metrics refresh failed")
        await asyncio.sleep(interval)

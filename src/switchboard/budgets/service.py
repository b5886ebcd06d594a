"""Monthly budgets: what a request may cost, checked before it reaches the model.

Prices and budgets are read from their tables into memory (at start, every
``SWITCHBOARD_BUDGET_REFRESH_SECONDS`` and at once in the worker where an admin changes them), so
the request path does no database query. A request reserves an upper bound of its cost (its
prompt as the engine counts it, plus every token it may generate; gateway/prompt_tokens.py),
priced at the model's prices, atomically on its key's and its owner's counters (counters.py);
its ticket settles with the real cost when it closes. Concurrent requests cannot overspend.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from switchboard.budgets.counters import UNLIMITED, Spend, SpendStore, SpendWant
from switchboard.budgets.tables import Budget, ModelPrice
from switchboard.observability.metrics import BUDGET_USED
from switchboard.usage.breakdown import SpendRow, spend_rows

log = logging.getLogger(__name__)
MILLION = 1_000_000


@dataclass(frozen=True)
class Price:
    prompt: float = 0.0
    """Money per million prompt tokens."""
    completion: float = 0.0

    def cost(self, prompt_tokens: float, completion_tokens: float) -> float:
        return (prompt_tokens * self.prompt + completion_tokens * self.completion) / MILLION


@dataclass(frozen=True)
class Limit:
    money: float | None = None
    tokens: int | None = None


class OverBudget(Exception):
    """The request could pass a monthly budget; ``message`` says which and when it renews."""

    def __init__(self, message: str, renews: dt.datetime) -> None:
        super().__init__(message)
        self.message = message
        self.renews = renews


def month_of(when: dt.datetime) -> str:
    return when.strftime("%Y-%m")


def next_month(when: dt.datetime) -> dt.datetime:
    first = when.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (first + dt.timedelta(days=32)).replace(day=1)


@dataclass
class BudgetHold:
    """What one request reserved on its holders' counters; ``settle`` once with the real cost."""

    service: BudgetService
    month: str
    keys: list[str]
    tokens: float
    money: float
    spent: dict[str, Spend] = field(default_factory=dict)
    settled: bool = False

    def settle(self, model: str, prompt_tokens: int, completion_tokens: int) -> None:
        if self.settled:
            return
        self.settled = True
        tokens = prompt_tokens + completion_tokens
        money = self.service.price(model).cost(prompt_tokens, completion_tokens)
        for key in self.keys:
            self.service.store.adjust_soon(self.month, key, tokens - self.tokens,
                                           money - self.money)  # fmt: skip
            before = self.spent.get(key, Spend())
            self.service.observe(key, Spend(before.tokens + tokens, before.money + money))


class BudgetService:
    def __init__(
        self,
        store: SpendStore,
        refresh_seconds: float,
        currency: str,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.store = store
        self.refresh_seconds = refresh_seconds
        self.currency = currency
        self.clock = clock
        self.prices: dict[str, Price] = {}
        self.limits: dict[str, Limit] = {}
        self.seeded_month = ""

    # --- configuration ----------------------------------------------------------------------
    def price(self, model: str) -> Price:
        return self.prices.get(model, Price())

    async def load(self) -> None:
        """Prices and budgets from their tables (a few rows: admins set them)."""
        prices = await ModelPrice.select()
        budgets = await Budget.select()
        self.configure(
            {
                row["model"]: Price(row["prompt_per_million"], row["completion_per_million"])
                for row in prices
            },
            {
                f"{row['kind']}:{row['subject_id']}": Limit(row["money"], row["tokens"])
                for row in budgets
                if row["money"] is not None or row["tokens"] is not None
            },
        )

    def configure(self, prices: dict[str, Price], limits: dict[str, Limit]) -> None:
        """These prices and budgets from now on; a removed budget's ratios leave the metric
        at once (no stale alert)."""
        removed = set(self.limits) - set(limits)
        self.prices, self.limits = prices, limits
        for key in removed:
            kind, _, subject = key.partition(":")
            for resource in ("tokens", "money"):
                BUDGET_USED.discard(kind, subject, resource)

    async def seed(self) -> None:
        """This month's spend so far, from the usage table, into the counters: at start, once
        per month and store (another worker may have seeded it already)."""
        now = self.clock()
        month = month_of(now)
        if month == self.seeded_month and await self.store.seeded(month):
            return
        since = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        # At a month change while running, the new month's requests so far are already in the
        # counters (and in the usage table): the seed only marks the month as seeded. The same
        # month again means the store lost its seed: it is seeded from the table once more.
        month_changed = bool(self.seeded_month) and self.seeded_month != month
        rows = [] if month_changed else await spend_rows(since, next_month(now))
        spent = self._tally(rows)
        if await self.store.seed(month, spent):
            log.info("budget counters seeded", extra={"month": month, "holders": len(spent)})
        self.seeded_month = month
        await self.observe_all()

    def _tally(self, rows: list[SpendRow]) -> dict[str, Spend]:
        """Usage rows as each holder's spend (its user's and its key's), at today's prices."""
        spent: dict[str, Spend] = {}
        for row in rows:
            money = self.price(row.model).cost(row.prompt_tokens, row.completion_tokens)
            tokens = row.prompt_tokens + row.completion_tokens
            holders = [f"user:{row.user_id}"] if row.user_id is not None else []
            holders += [f"key:{row.key_id}"] if row.key_id is not None else []
            for key in holders:
                was = spent.get(key, Spend())
                spent[key] = Spend(was.tokens + tokens, was.money + money)
        return spent

    async def refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            with contextlib.suppress(Exception):
                await self.load()
                await self.seed()
                await self.observe_all()

    # --- the request path -------------------------------------------------------------------
    def applies(self, user_id: int | None, key_id: int | None) -> bool:
        """Whether the key or its owner has a budget (only then is the prompt counted)."""
        return (key_id is not None and f"key:{key_id}" in self.limits) or (
            user_id is not None and f"user:{user_id}" in self.limits
        )

    async def reserve(
        self,
        user_id: int | None,
        key_id: int | None,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
    ) -> BudgetHold | None:
        """Reserve the worst case on the key's and the owner's budgets (None: neither has one),
        or raise ``OverBudget``."""
        holders = [f"key:{key_id}"] if key_id is not None else []
        holders += [f"user:{user_id}"] if user_id is not None else []
        limited = [(key, self.limits[key]) for key in holders if key in self.limits]
        if not limited:
            return None
        now = self.clock()
        month = month_of(now)
        tokens = float(prompt_tokens + completion_tokens)
        money = self.price(model).cost(prompt_tokens, completion_tokens)
        wants = [
            SpendWant(
                key,
                tokens,
                money,
                UNLIMITED if limit.tokens is None else float(limit.tokens),
                UNLIMITED if limit.money is None else limit.money,
            )
            for key, limit in limited
        ]
        reserved = await self.store.reserve(month, wants)
        spent = dict(zip([key for key, _ in limited], reserved.spent, strict=True))
        if reserved.refused is not None:
            key, limit = limited[reserved.refused]
            want = (prompt_tokens, completion_tokens)
            raise OverBudget(self._refusal(key, limit, spent[key], want, money, now),
                             next_month(now))  # fmt: skip
        return BudgetHold(self, month, [key for key, _ in limited], tokens, money, spent)

    def _refusal(
        self,
        key: str,
        limit: Limit,
        spent: Spend,
        want: tuple[int, int],
        money: float,
        now: dt.datetime,
    ) -> str:
        holder = "this key's" if key.startswith("key:") else "your account's"
        prompt, completion = want
        tokens = prompt + completion
        if limit.tokens is not None and spent.tokens + tokens > limit.tokens:
            left = max(0, int(limit.tokens - spent.tokens))
            need = (f"use up to {tokens:,} tokens ({prompt:,} in the prompt, up to "
                    f"{completion:,} generated), but only {left:,} of the {limit.tokens:,} "
                    f"tokens in {holder} monthly budget remain")  # fmt: skip
        else:
            assert limit.money is not None
            left_money = max(0.0, limit.money - spent.money)
            need = (
                f"cost up to {money:.4f} {self.currency}, but only {left_money:.4f} of the "
                f"{limit.money:.2f} {self.currency} in {holder} monthly budget remain"
            )
        return (
            f"You exceeded your current quota: this request could {need}. The budget renews on "
            f"{next_month(now).date().isoformat()}; ask an admin to raise it, or ask for fewer "
            "tokens (max_tokens)."
        )

    # --- reading ----------------------------------------------------------------------------
    async def spent(self, keys: list[str]) -> dict[str, Spend]:
        month = month_of(self.clock())
        return dict(zip(keys, await self.store.spent(month, keys), strict=True))

    def observe(self, key: str, spent: Spend) -> None:
        """The metric behind the 80 % alert (only holders with a budget: bounded labels)."""
        limit = self.limits.get(key)
        if limit is None:
            return
        kind, _, subject = key.partition(":")
        for resource, used, allowed in (
            ("tokens", spent.tokens, limit.tokens),
            ("money", spent.money, limit.money),
        ):
            if allowed:
                BUDGET_USED.set(used / allowed, kind, subject, resource)
            else:  # not (or no longer) limited in this resource
                BUDGET_USED.discard(kind, subject, resource)

    async def observe_all(self) -> None:
        keys = list(self.limits)
        for key, spent in (await self.spent(keys)).items():
            self.observe(key, spent)

    async def recorded(self, keys: list[str], owner: int) -> dict[str, Spend]:
        """This month's spend of ``owner``'s holders (the owner, their keys) from the usage
        table (as written: within ``usage_flush_interval`` of a request's end)."""
        if not keys:
            return {}
        now = self.clock()
        key_ids = [int(key.partition(":")[2]) for key in keys if key.startswith("key:")]
        since = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        rows = await spend_rows(since, next_month(now), user_id=owner, key_ids=key_ids)
        tallied = self._tally(rows)
        return {key: tallied.get(key, Spend()) for key in keys}

    async def describe(self, keys: list[str], *, owner: int) -> dict[str, str]:
        """This month's spend of each of ``owner``'s holders (the owner, their keys), with its
        budget, as the pages show it. A holder with a budget: its counter (what the budget
        enforces, in-flight reservations included); without one (none is kept): its usage."""
        budgeted = [key for key in keys if key in self.limits]
        spent = await self.spent(budgeted)
        spent.update(await self.recorded([key for key in keys if key not in self.limits], owner))
        described = {}
        for key in keys:
            text = f"{int(spent[key].tokens):,} tokens · {spent[key].money:.4f} {self.currency}"
            limit = self.limits.get(key)
            if limit is not None:
                parts = [f"{limit.tokens:,} tokens"] if limit.tokens is not None else []
                if limit.money is not None:
                    parts.append(f"{limit.money:.2f} {self.currency}")
                text += " of a budget of " + " and ".join(parts)
            described[key] = text
        return described

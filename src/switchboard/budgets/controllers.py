"""Admin > Budgets: prices per model, monthly budgets per person and per key, and their spend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import Parameter, URLEncodedBody
from litestar.response import Template

from switchboard.accounts.guards import current_user, requires_admin
from switchboard.accounts.services import get_user_by_name, usernames
from switchboard.budgets import catalog
from switchboard.budgets.service import BudgetService
from switchboard.keys.services import KeyService, key_labels
from switchboard.web.rendering import page

MAX_ID = 2**31 - 1


class PriceForm(msgspec.Struct):
    model: str = ""
    prompt_per_million: str = ""
    completion_per_million: str = ""


class RemovePriceForm(msgspec.Struct):
    model: str = ""


class RemoveBudgetForm(msgspec.Struct):
    kind: str = ""
    subject_id: str = ""


class BudgetForm(msgspec.Struct):
    kind: str = "user"
    subject: str = ""
    """A username, or a key's id (the Keys page of its owner shows it as #id)."""
    money: str = ""
    tokens: str = ""


class BudgetsController(Controller):
    path = "/admin/budgets"
    guards = [requires_admin]
    include_in_schema = False

    async def _render(
        self,
        request: Request[Any, Any, Any],
        budgets: BudgetService,
        *,
        only: Holders | None = None,
        status_code: int | None = None,
        **extra: Any,
    ) -> Template:
        """``only``: one person's page (their budget and their keys')."""
        rows = [r for r in await catalog.budgets() if only is None or only.holds(r)]
        users = await usernames([r["subject_id"] for r in rows if r["kind"] == "user"])
        keys = await key_labels([r["subject_id"] for r in rows if r["kind"] == "key"])
        spent = await budgets.spent([f"{r['kind']}:{r['subject_id']}" for r in rows])
        for row in rows:
            names = users if row["kind"] == "user" else keys
            row["name"] = names.get(row["subject_id"], f"#{row['subject_id']} (gone)")
            row["spent"] = spent[f"{row['kind']}:{row['subject_id']}"]
        context = {
            "user": await current_user(request),
            "prices": await catalog.prices(),
            "budgets": rows,
            "currency": budgets.currency,
            "error": None,
            "notice": None,
            "only": only,
            **extra,
        }
        status = status_code or (400 if extra.get("error") else 200)
        return page(request, "budgets/admin.html", context, status_code=status)

    @get("/", name="admin-budgets")
    async def index(
        self,
        request: Request[Any, Any, Any],
        budgets: NamedDependency[BudgetService],
        keys: NamedDependency[KeyService],
        user: Annotated[str | None, Parameter(max_length=64)] = None,
    ) -> Template:
        """``?user=NAME`` (the Users page links it): that person's budgets only."""
        if user is None:
            return await self._render(request, budgets)
        found = await get_user_by_name(user)
        if found is None:
            return await self._render(
                request, budgets, status_code=404, error=f"No such user: {user}."
            )
        own_keys = {int(row["id"]) for row in await keys.list_for_user(int(found.id))}
        only = Holders(found.username, int(found.id), own_keys)
        return await self._render(request, budgets, only=only)

    @post("/prices", status_code=200)
    async def set_price(
        self,
        request: Request[Any, Any, Any],
        data: URLEncodedBody[PriceForm],
        budgets: NamedDependency[BudgetService],
    ) -> Template:
        try:
            await catalog.set_price(
                data.model, data.prompt_per_million, data.completion_per_million
            )
        except catalog.CatalogError as exc:
            return await self._render(request, budgets, error=str(exc))
        await budgets.load()
        return await self._render(request, budgets, notice=f"Saved the price of {data.model}.")

    @post("/prices/remove", status_code=200)
    async def remove_price(
        self,
        request: Request[Any, Any, Any],
        data: URLEncodedBody[RemovePriceForm],
        budgets: NamedDependency[BudgetService],
    ) -> Template:
        await catalog.remove_price(data.model)
        await budgets.load()
        return await self._render(request, budgets, notice=f"Removed the price of {data.model}.")

    @post("/limits", status_code=200)
    async def set_budget(
        self,
        request: Request[Any, Any, Any],
        data: URLEncodedBody[BudgetForm],
        budgets: NamedDependency[BudgetService],
    ) -> Template:
        subject = await _subject_id(data.kind, data.subject.strip())
        if subject is None:
            what = "user" if data.kind == "user" else "key (its number, as on the Keys page)"
            return await self._render(request, budgets, error=f"No such {what}: {data.subject}.")
        try:
            await catalog.set_budget(data.kind, subject, data.money, data.tokens)  # type: ignore[arg-type]
        except catalog.CatalogError as exc:
            return await self._render(request, budgets, error=str(exc))
        await budgets.load()
        await budgets.observe_all()
        return await self._render(request, budgets, notice="Saved the budget.")

    @post("/limits/remove", status_code=200)
    async def remove_budget(
        self,
        request: Request[Any, Any, Any],
        data: URLEncodedBody[RemoveBudgetForm],
        budgets: NamedDependency[BudgetService],
    ) -> Template:
        number = data.subject_id.strip()
        if data.kind not in ("user", "key") or not _fits_an_id(number):
            return await self._render(request, budgets, error="No such budget.")
        subject = int(number)
        names = await (usernames if data.kind == "user" else key_labels)([subject])
        what = f"{data.kind} {names.get(subject, f'#{subject}')}"
        if not await catalog.remove_budget(data.kind, subject):  # type: ignore[arg-type]
            return await self._render(
                request, budgets, status_code=404, error="That budget was already removed."
            )
        await budgets.load()
        return await self._render(request, budgets, notice=f"Removed the budget of {what}.")


@dataclass(frozen=True)
class Holders:
    """One person and their keys, whose budgets a filtered page shows."""

    username: str
    user_id: int
    key_ids: set[int]

    def holds(self, row: dict[str, Any]) -> bool:
        if row["kind"] == "user":
            return bool(row["subject_id"] == self.user_id)
        return row["subject_id"] in self.key_ids


def _fits_an_id(number: str) -> bool:
    """Digits of an id the id columns can hold (PostgreSQL's integer: up to 2^31 - 1)."""
    return number.isascii() and number.isdigit() and len(number) <= 10 and int(number) <= MAX_ID


async def _subject_id(kind: str, subject: str) -> int | None:
    if kind == "user":
        found = await get_user_by_name(subject) if subject else None
        return None if found is None else int(found.id)
    number = subject.lstrip("#")
    if kind == "key" and _fits_an_id(number):
        return int(number) if await key_labels([int(number)]) else None
    return None

"""Admin > Budgets: prices per model, monthly budgets per person and per key, and their spend."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import URLEncodedBody
from litestar.response import Template

from switchboard.accounts.guards import current_user, requires_admin
from switchboard.accounts.services import get_user_by_name, usernames
from switchboard.budgets import catalog
from switchboard.budgets.service import BudgetService
from switchboard.keys.services import key_labels
from switchboard.web.rendering import page

MAX_ID = 2**31 - 1


class PriceForm(msgspec.Struct):
    model: str = ""
    prompt_per_million: str = ""
    completion_per_million: str = ""


class RemovePriceForm(msgspec.Struct):
    model: str = ""


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
        self, request: Request[Any, Any, Any], budgets: BudgetService, **extra: Any
    ) -> Template:
        rows = await catalog.budgets()
        users = await usernames([r["subject_id"] for r in rows if r["kind"] == "user"])
        keys = await key_labels([r["subject_id"] for r in rows if r["kind"] == "key"])
        spent = await budgets.spent([f"{r['kind']}:{r['subject_id']}" for r in rows])
        for row in rows:
            names = users if row["kind"] == "user" else keys
            row["name"] = names.get(row["subject_id"], f"#{row['subject_id']} (gone)")
            row["spent"] = spent[f"{row['kind']}:{row['subject_id']}"]
        context = {
            "user": await current_user(request), "prices": await catalog.prices(),
            "budgets": rows, "currency": budgets.currency, "error": None, "notice": None,
            **extra,
        }  # fmt: skip
        return page(request, "budgets/admin.html", context,
                    status_code=400 if extra.get("error") else 200)  # fmt: skip

    @get("/", name="admin-budgets")
    async def index(
        self, request: Request[Any, Any, Any], budgets: NamedDependency[BudgetService]
    ) -> Template:
        return await self._render(request, budgets)

    @post("/prices", status_code=200)
    async def set_price(
        self,
        request: Request[Any, Any, Any],
        data: URLEncodedBody[PriceForm],
        budgets: NamedDependency[BudgetService],
    ) -> Template:
        try:
            await catalog.set_price(data.model, data.prompt_per_million,
                                    data.completion_per_million)  # fmt: skip
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


async def _subject_id(kind: str, subject: str) -> int | None:
    if kind == "user":
        found = await get_user_by_name(subject) if subject else None
        return None if found is None else int(found.id)
    number = subject.lstrip("#")
    # no key has an id past the id column's range (PostgreSQL's integer: 2^31 - 1)
    if kind == "key" and number.isdigit() and len(number) <= 10 and int(number) <= MAX_ID:
        return int(number) if await key_labels([int(number)]) else None
    return None

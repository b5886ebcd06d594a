"""The prices and budgets admins set (the tables); the service keeps a copy in memory."""

from __future__ import annotations

import math
from typing import Any, Literal

from switchboard.budgets.tables import Budget, ModelPrice

Kind = Literal["user", "key"]


class CatalogError(ValueError):
    """A value an admin typed that cannot be saved (shown on the page)."""


def _amount(text: str, what: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise CatalogError(f"{what} is a number, like 0.15.") from None
    if not math.isfinite(value) or value < 0 or value > 1e12:
        raise CatalogError(f"{what} is a number from 0 to 10^12.")
    return value


async def set_price(model: str, prompt: str, completion: str) -> None:
    model = model.strip()
    if not model or len(model) > 128 or "\x00" in model:  # PostgreSQL cannot store a NUL
        raise CatalogError("A model name has 1 to 128 characters, none of them NUL.")
    prompt_price = _amount(prompt, "The prompt price") or 0.0
    completion_price = _amount(completion, "The completion price") or 0.0
    changed = (
        await ModelPrice.update(
            {
                ModelPrice.prompt_per_million: prompt_price,
                ModelPrice.completion_per_million: completion_price,
            }
        )
        .where(ModelPrice.model == model)
        .returning(ModelPrice.id)
    )
    if not changed:
        await ModelPrice.insert(
            ModelPrice(
                model=model,
                prompt_per_million=prompt_price,
                completion_per_million=completion_price,
            )
        )


async def remove_price(model: str) -> None:
    if "\x00" not in model:  # no price has one (and PostgreSQL refuses the query)
        await ModelPrice.delete().where(ModelPrice.model == model)


async def set_budget(kind: Kind, subject_id: int, money: str, tokens: str) -> None:
    """Empty money and tokens remove the budget."""
    amount = _amount(money, "The money budget")
    count = _amount(tokens, "The token budget")
    if count is not None and not count.is_integer():
        raise CatalogError("The token budget is a whole number.")
    await Budget.delete().where((Budget.kind == kind) & (Budget.subject_id == subject_id))
    if amount is None and count is None:
        return
    await Budget.insert(
        Budget(
            kind=kind,
            subject_id=subject_id,
            money=amount,
            tokens=None if count is None else int(count),
        )
    )


async def remove_budget(kind: Kind, subject_id: int) -> bool:
    """False if there was none (removed meanwhile, by another admin or another tab)."""
    gone = (
        await Budget.delete()
        .where((Budget.kind == kind) & (Budget.subject_id == subject_id))
        .returning(Budget.id)
    )
    return bool(gone)


async def prices() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await ModelPrice.select().order_by(ModelPrice.model)
    return rows


async def budgets() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await Budget.select().order_by(Budget.kind, Budget.subject_id)
    return rows

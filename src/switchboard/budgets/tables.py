"""Prices per model and monthly budgets per person and per key (set by admins)."""

from __future__ import annotations

from piccolo.columns import BigInt, DoublePrecision, Integer, Serial, Varchar
from piccolo.table import Table


class ModelPrice(Table, tablename="model_prices"):
    id: Serial  # Piccolo adds the primary key; declared here for the type checker
    model = Varchar(length=128, unique=True)
    prompt_per_million = DoublePrecision(default=0.0)
    """Money per million prompt tokens (in the currency of SWITCHBOARD_BUDGET_CURRENCY)."""
    completion_per_million = DoublePrecision(default=0.0)


class Budget(Table, tablename="budgets"):
    """One monthly budget: ``kind`` ``user`` or ``key``, ``subject_id`` its id. Plain ids, not
    foreign keys: the budget is the budget feature's, the users and keys are not."""

    id: Serial
    kind = Varchar(length=8)
    subject_id = Integer()
    money = DoublePrecision(null=True, default=None)
    """Money per calendar month (UTC); NULL: no money budget."""
    tokens = BigInt(null=True, default=None)
    """Tokens (prompt + completion) per calendar month; NULL: no token budget."""

"""Budgets and usage SQL on both databases: every test runs on SQLite and on a real PostgreSQL
(``database_url``; its server's zone is UTC+14, so a query that read the session's zone as UTC
would put rows on the wrong day or month). The app runs on a socket in front of the fake model
server (on PostgreSQL the pool lives on the server's loop: database work goes through
``live.run``); each test has a fresh database, and ``api`` sends alice's key."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from switchboard.accounts.services import create_user
from switchboard.app import create_app
from switchboard.budgets import catalog
from switchboard.budgets.counters import MemorySpend, Spend
from switchboard.budgets.service import BudgetService
from switchboard.db.bulk import close_kept_thread, reader_thread
from switchboard.observability.business import BusinessFigures
from switchboard.usage import rows
from switchboard.usage.business import business_figures
from switchboard.usage.tables import UsageRecord
from switchboard.usage.writer import UsageWriter
from tests.conftest import SettingsFactory, WebFactory, mint_key_in
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer
from tests.unit.test_budgets import BODY, CHAT, alice_ids, budget, row

USAGE = "/v1/usage"


@pytest.fixture
def live(
    database_url: str | None, make_settings: SettingsFactory, fake_upstream: FakeUpstream
) -> Iterator[LiveServer]:
    overrides = {} if database_url is None else {"database_url": database_url}
    app = create_app(make_settings(**overrides), upstream_transport=fake_upstream.transport())
    server = LiveServer(app).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def api(live: LiveServer) -> Iterator[httpx.Client]:
    """alice's key on the live app."""
    secret = live.run(mint_key_in(live.app, "alice"))
    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=live.url, headers=headers, timeout=60) as client:
        yield client


def test_over_budget_is_insufficient_quota_and_spend_sums_per_holder(
    live: LiveServer, api: httpx.Client
) -> None:
    live.run(catalog.set_price("fake-model", "1000000", "2000000"))  # 1 and 2 per token
    key_id = live.run(budget(live, "key", tokens="30"))
    user_id = live.run(budget(live, "user", money="1000"))
    for _ in range(2):  # each reserves 19 tokens, then costs 7 + 3 tokens, 7 * 1 + 3 * 2 money
        assert api.post(CHAT, json=BODY).status_code == 200
    refused = api.post(CHAT, json=BODY)  # 20 + 19 > 30
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_quota")
    budgets = live.app.state.resources.budgets
    live.run(live.app.state.resources.usage.flush())
    rows = live.run(UsageRecord.select(UsageRecord.status).order_by(UsageRecord.id).run())
    assert [r["status"] for r in rows] == [200, 200, 429]
    spent = live.run(budgets.spent([f"key:{key_id}", f"user:{user_id}"]))
    assert spent == {f"key:{key_id}": Spend(20, 26), f"user:{user_id}": Spend(20, 26)}

    async def seeded_again() -> dict[str, Spend]:  # a later start: the sums from the usage table
        now = dt.datetime.now(dt.UTC)
        service = BudgetService(MemorySpend(), 15, "USD", clock=lambda: now)
        await service.load()
        await service.seed()
        return await service.spent([f"key:{key_id}", f"user:{user_id}"])

    assert live.run(seeded_again()) == spent


def test_the_month_is_the_utc_month(live: LiveServer) -> None:
    async def seeded() -> dict[str, Spend]:
        now = dt.datetime(2027, 3, 15, 12, tzinfo=dt.UTC)
        await UsageRecord.insert(
            row(dt.datetime(2027, 2, 28, 23, 59, tzinfo=dt.UTC)),  # 1 March in UTC+14
            row(dt.datetime(2027, 3, 1, 0, 0, tzinfo=dt.UTC), key_id=None),  # the first instant
            row(dt.datetime(2027, 3, 31, 23, 59, tzinfo=dt.UTC), user_id=None),  # the last minute
            row(dt.datetime(2027, 4, 1, 0, 0, tzinfo=dt.UTC)),  # April's (a clock set back)
        )
        await catalog.set_price("m", "1000000", "0")
        service = BudgetService(MemorySpend(), 15, "USD", clock=lambda: now)
        await service.load()
        await service.seed()
        return await service.spent(["user:1", "key:2"])

    assert live.run(seeded()) == {"user:1": Spend(150, 100), "key:2": Spend(150, 100)}


async def some_rows(live: LiveServer) -> int:
    """alice's usage in March 2027 (and a little of bob's, and some outside the range)."""
    user_id, key_id = await alice_ids()
    await mint_key_in(live.app, "bob")
    day1, day2 = dt.datetime(2027, 3, 1, tzinfo=dt.UTC), dt.datetime(2027, 3, 2, tzinfo=dt.UTC)

    def at(when: dt.datetime, **values: Any) -> UsageRecord:
        return row(when, **{"user_id": user_id, "key_id": key_id, **values})

    # a table, hence fmt: skip: one usage row per entry, its values side by side
    await UsageRecord.insert(
        at(day1 + dt.timedelta(hours=10), model="small", prompt_tokens=10, completion_tokens=5,
           total_tokens=15, key_id=None, cache_hit=True),
        at(day1 + dt.timedelta(hours=23, minutes=30), model="large", prompt_tokens=20,
           completion_tokens=10, total_tokens=30),  # 2 March in UTC+14: still 1 March
        at(day2 + dt.timedelta(minutes=10), model="small", status=500, prompt_tokens=0,
           completion_tokens=0, total_tokens=0),
        at(day2 + dt.timedelta(hours=1), model="large", prompt_tokens=10, completion_tokens=5,
           total_tokens=15, key_id=None),
        at(day1 - dt.timedelta(minutes=1), model="old", total_tokens=1000),  # before start
        at(day2 + dt.timedelta(days=1), model="new", total_tokens=1000),  # after end
        row(day1 + dt.timedelta(hours=12), user_id=user_id + 1, key_id=None, model="bobs"),
    )  # fmt: skip
    return key_id


def summary(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (
            b["group"],
            b.get("key_id"),
            b["requests"],
            b["total_tokens"],
            b["cache_hits"],
            b["errors"],
        )
        for b in report["data"]
    ]


def test_usage_per_day_model_and_key_within_start_and_end(
    live: LiveServer, api: httpx.Client
) -> None:
    key_id = live.run(some_rows(live))
    march = {"start": "2027-03-01", "end": "2027-03-02"}
    by_day = api.get(USAGE, params={**march, "group_by": "day"})
    assert by_day.status_code == 200, by_day.text
    assert summary(by_day.json()) == [
        ("2027-03-01", None, 2, 45, 1, 0),
        ("2027-03-02", None, 2, 15, 0, 1),
    ]
    assert by_day.json()["total"]["total_tokens"] == 60
    by_model = api.get(USAGE, params={**march, "group_by": "model"}).json()
    assert summary(by_model) == [("large", None, 2, 45, 0, 0), ("small", None, 2, 15, 1, 1)]
    by_key = api.get(USAGE, params={**march, "group_by": "key"}).json()
    label = by_key["data"][0]["group"] if by_key["data"] else ""
    assert label.startswith("sk-sb-")
    # the same tokens: the browser chat (no key) after the keys, on both databases
    assert summary(by_key) == [(label, key_id, 2, 30, 0, 1), ("browser", None, 2, 30, 1, 0)]
    one_day = api.get(USAGE, params={"start": "2027-03-02", "end": "2027-03-02"})
    assert summary(one_day.json()) == [("2027-03-02", None, 2, 15, 0, 1)]


@pytest.mark.parametrize(
    ("start", "end", "days"),
    [("0001-01-01", "9999-12-31", 4), ("2030-01-02", "2030-01-01", 0), ("9999-12-31", None, 0)],
)
def test_the_widest_and_empty_ranges_are_answers_not_errors(
    live: LiveServer, api: httpx.Client, start: str, end: str | None, days: int
) -> None:
    live.run(some_rows(live))
    params = {"start": start} | ({"end": end} if end else {})
    response = api.get(USAGE, params=params)
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]) == days


def test_a_username_postgresql_cannot_store_is_not_found_not_a_500(live: LiveServer) -> None:
    live.run(create_user("boss", role="admin"))
    boss = {"Authorization": f"Bearer {live.run(mint_key_in(live.app, 'boss'))}"}
    response = httpx.get(f"{live.url}{USAGE}", params={"user": "nul\x00name"}, headers=boss)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["param"] == "user"


def test_the_budgets_page_refuses_what_the_columns_cannot_hold(
    live: LiveServer, web: WebFactory
) -> None:
    password = "pw-long-enough"  # pragma: allowlist secret
    live.run(create_user("boss", password=password, role="admin"))
    boss = web(live.url)
    assert boss.sign_in("boss", password).status_code == 303
    for subject, kind in [(f"#{2**31}", "key"), (str(10**30), "key"), ("nul\x00name", "user")]:
        form = {"kind": kind, "subject": subject, "tokens": "5"}
        response = boss.post("/admin/budgets/limits", form, htmx=True)
        assert response.status_code == 400, (subject, response.status_code)
        assert "No such" in response.text or "NUL character" in response.text
    price = {"model": "nul\x00model", "prompt_per_million": "1"}
    saved = boss.post("/admin/budgets/prices", price)
    assert saved.status_code == 400
    assert "NUL character" in saved.text  # refused before the page's own check (web/inputs.py)
    removed = boss.post("/admin/budgets/prices/remove", {"model": "nul\x00model"})
    assert removed.status_code == 400
    page = boss.get("/admin/budgets")
    assert page.status_code == 200
    assert "No budgets yet." in page.text


def test_usage_rows_round_trip_through_the_batched_insert(live: LiveServer) -> None:
    """The raw multi-row INSERT stores what Piccolo's reads give back: timestamps with their
    zone, booleans, NULLs, more rows than one statement takes."""
    at = dt.datetime(2026, 12, 1, 12, 30, tzinfo=dt.UTC)
    events = [
        rows.UsageEvent(
            model="m",
            user_id=n,
            key_id=None if n % 2 else n,
            source="web",
            prompt_tokens=n,
            completion_tokens=1,
            latency_ms=5,
            ttft_ms=n % 2 or None,
            status=499,
            cache_hit=bool(n % 3),
            stream=bool(n % 5),
            request_id=f"r{n}",
            at=at,
        )
        for n in range(rows.ROWS_PER_STATEMENT + 5)
    ]

    async def roundtrip() -> list[dict[str, Any]]:
        await UsageRecord.delete(force=True)
        usage = UsageWriter(flush_interval=3600, batch_size=len(events))
        for event in events:
            usage.record(event)
        assert await usage.flush() == len(events)
        return list(await UsageRecord.select().order_by(UsageRecord.user_id))

    stored_rows = live.run(roundtrip())
    assert len(stored_rows) == len(events)
    for event, stored in zip(events, stored_rows, strict=True):
        assert stored["created_at"] == at
        assert (stored["key_id"], stored["ttft_ms"], stored["cache_hit"], stored["stream"]) == (
            event.key_id,
            event.ttft_ms,
            event.cache_hit,
            event.stream,
        )
        total = event.prompt_tokens + event.completion_tokens
        assert (stored["source"], stored["status"], stored["total_tokens"]) == ("web", 499, total)


@pytest.mark.usefixtures("api")  # alice and her key
def test_the_business_figures_count_the_utc_day_and_the_week(live: LiveServer) -> None:
    """Today is since 00:00 UTC (on PostgreSQL's UTC+14 as on SQLite), the active users of a
    day and a week are the last 24 hours' and 7 days', each user once."""

    async def figures() -> BusinessFigures:
        user_id, key_id = await alice_ids()
        now = dt.datetime.now(dt.UTC)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        await UsageRecord.delete(force=True)
        # a table, hence fmt: skip: one usage row per entry
        await UsageRecord.insert(
            row(midnight, user_id=user_id, key_id=key_id, total_tokens=10),  # today's first
            row(midnight, user_id=user_id, key_id=None, total_tokens=5),  # the workspace's
            row(midnight - dt.timedelta(minutes=1), user_id=900, total_tokens=20),  # yesterday
            row(now - dt.timedelta(days=3), user_id=901, total_tokens=40),
            row(now - dt.timedelta(days=8), user_id=902, total_tokens=80),  # out of the week
        )  # fmt: skip
        reads = reader_thread("business-reads")
        try:
            return await business_figures(live.app.state.resources.db, reads)
        finally:
            await close_kept_thread(reads)

    found = live.run(figures())
    assert found.active_users == {"1d": 2, "7d": 3}
    assert (found.requests_today, found.tokens_today) == (2, 15)
    assert found.top_users == [("alice", 15)]
    assert len(found.top_keys) == 1
    assert found.top_keys[0][1] == 10

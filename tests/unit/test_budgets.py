"""Monthly budgets per key and per person, in tokens and money: a request that could pass one is
refused with OpenAI's ``insufficient_quota``; the counters settle with the real cost, are seeded
from the usage table, shared through Redis, and feed the 80 % metric."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from switchboard.accounts.services import get_user_by_name
from switchboard.budgets import catalog
from switchboard.budgets.counters import MemorySpend, RedisSpend, Spend
from switchboard.budgets.service import BudgetService, OverBudget
from switchboard.db.redis import redis_client
from switchboard.keys.tables import ApiKey
from switchboard.usage.tables import UsageRecord
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer

CHAT = "/v1/chat/completions"
BODY = {"model": "fake-model", "messages": [{"role": "user", "content": "a b c"}], "max_tokens": 10}
# Each answer: 7 prompt + 3 completion tokens. The reservation: the prompt as the model server's
# /tokenize counts it (7) + max_tokens 10 = 17 tokens.


async def alice_ids() -> tuple[int, int]:
    user = await get_user_by_name("alice")
    assert user is not None
    key = await ApiKey.select(ApiKey.id).where(ApiKey.user == user.id).first()
    assert key is not None
    return int(user.id), int(key["id"])


async def budget(
    client: AsyncTestClient[Any] | LiveServer, kind: catalog.Kind, money: str = "", tokens: str = ""
) -> int:
    user_id, key_id = await alice_ids()
    subject = user_id if kind == "user" else key_id
    await catalog.set_budget(kind, subject, money, tokens)
    await client.app.state.resources.budgets.load()
    return subject


def used_ratio(kind: str, subject: int, resource: str) -> float | None:
    labels = {"kind": kind, "id": str(subject), "resource": resource}
    return REGISTRY.get_sample_value("switchboard_budget_used_ratio", labels)


async def test_a_key_over_its_token_budget_gets_insufficient_quota(
    client: AsyncTestClient[Any],
) -> None:
    key_id = await budget(client, "key", tokens="30")
    first, second = await client.post(CHAT, json=BODY), await client.post(CHAT, json=BODY)
    assert (first.status_code, second.status_code) == (200, 200)  # 0+17, then 10+17 <= 30
    refused = await client.post(CHAT, json=BODY)  # 20 spent + 17 > 30
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_quota")
    assert (
        "could use up to 17 tokens (7 in the prompt, up to 10 generated), but only 10 of the "
        "30 tokens in this key's monthly budget remain" in error["message"]
    )
    assert int(refused.headers["retry-after"]) > 0  # until the month renews
    assert "x-ratelimit-remaining-tokens" in refused.headers
    small = await client.post(CHAT, json={**BODY, "max_tokens": 1})  # 20 + 7 + 1 fits
    assert small.status_code == 200
    await client.app.state.resources.usage.flush()
    statuses = [r["status"] for r in await UsageRecord.select().order_by(UsageRecord.id)]
    assert statuses == [200, 200, 429, 200]  # the refusal is a usage row too
    spent = await client.app.state.resources.budgets.spent([f"key:{key_id}"])
    # settled with the real tokens (the fake answers 3 words whatever max_tokens says)
    assert spent[f"key:{key_id}"].tokens == 30
    assert used_ratio("key", key_id, "tokens") == pytest.approx(1.0)


async def test_a_money_budget_prices_each_model_and_covers_all_keys_and_the_chat(
    client: AsyncTestClient[Any],
) -> None:
    await catalog.set_price("fake-model", "1000000", "2000000")  # 1 and 2 per token
    user_id = await budget(client, "user", money="39")
    # worst case 7 * 1 + 10 * 2 = 27; real cost 7 * 1 + 3 * 2 = 13
    assert (await client.post(CHAT, json=BODY)).status_code == 200
    refused = await client.post(CHAT, json=BODY)  # 13 + 27 > 39
    assert refused.status_code == 429
    assert (
        "cost up to 27.0000 USD, but only 26.0000 of the 39.00 USD in your account's monthly "
        "budget" in refused.json()["error"]["message"]
    )
    spent = await client.app.state.resources.budgets.spent([f"user:{user_id}"])
    assert spent[f"user:{user_id}"] == Spend(tokens=10, money=13)
    assert used_ratio("user", user_id, "money") == pytest.approx(13 / 39)


async def test_a_failed_request_gives_its_reservation_back(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    key_id = await budget(client, "key", tokens="20")
    fake_upstream.fail_with = (500, {"error": {"message": "boom"}})
    for _ in range(3):
        assert (await client.post(CHAT, json=BODY)).status_code == 502
    spent = await client.app.state.resources.budgets.spent([f"key:{key_id}"])
    assert spent[f"key:{key_id}"].tokens == 0


async def test_no_budget_means_no_counter_and_no_limit(client: AsyncTestClient[Any]) -> None:
    for _ in range(3):
        assert (await client.post(CHAT, json=BODY)).status_code == 200
    budgets = client.app.state.resources.budgets
    user_id, key_id = await alice_ids()
    assert await budgets.reserve(user_id, key_id, "fake-model", 9, 10) is None


def row(at: dt.datetime, **values: Any) -> UsageRecord:
    fields = {
        "model": "m",
        "user_id": 1,
        "key_id": 2,
        "prompt_tokens": 100,
        "completion_tokens": 50,
        "total_tokens": 150,
        "created_at": at,
        **values,
    }
    return UsageRecord(**fields)


async def test_counters_are_seeded_from_this_months_usage_once(
    client: AsyncTestClient[Any],
) -> None:
    now = dt.datetime(2027, 3, 15, 12, tzinfo=dt.UTC)
    await UsageRecord.insert(
        row(now - dt.timedelta(days=1)),
        row(now, key_id=None),
        row(dt.datetime(2027, 2, 28, 23, tzinfo=dt.UTC)),  # last month: not counted
    )
    await catalog.set_price("m", "1000000", "0")
    await catalog.set_budget("user", 1, "", "1000")
    await catalog.set_budget("key", 2, "", "1000")
    store = MemorySpend()
    service = BudgetService(store, 15, "USD", clock=lambda: now)
    await service.load()
    await service.seed()
    await service.seed()  # once per month
    spent = await service.spent(["user:1", "key:2"])
    assert spent == {"user:1": Spend(300, 200), "key:2": Spend(150, 100)}
    later = BudgetService(store, 15, "USD", clock=lambda: now)  # another start, same store
    await later.load()
    await later.seed()
    assert (await later.spent(["user:1"]))["user:1"] == Spend(300, 200)
    with pytest.raises(OverBudget):
        await later.reserve(1, None, "m", 600, 101)  # 300 + 701 > 1000
    assert await later.reserve(1, None, "m", 600, 100) is not None
    clock = [dt.datetime(2027, 4, 1, 0, 0, 5, tzinfo=dt.UTC)]
    later.clock = lambda: clock[0]
    assert (await later.spent(["user:1"]))["user:1"] == Spend()  # a new month starts at zero
    hold = await later.reserve(1, None, "m", 10, 10)
    assert hold is not None
    hold.settle("m", 10, 10)  # counted, and written as a usage row before the next seed
    await UsageRecord.insert(row(clock[0], prompt_tokens=10, completion_tokens=10))
    await later.seed()  # the month changed while running: not counted twice
    assert (await later.spent(["user:1"]))["user:1"] == Spend(20, 10)


def catalog_limit(tokens: int | None = None, money: float | None = None) -> Any:
    from switchboard.budgets.service import Limit

    return Limit(money=money, tokens=tokens)


async def test_a_failing_redis_lets_requests_through_and_is_counted() -> None:
    from tests.support.live import free_port

    redis = redis_client(f"redis://127.0.0.1:{free_port()}/0", 0.2)
    labels = {"feature": "budgets"}
    before = REGISTRY.get_sample_value("switchboard_shared_state_errors_total", labels) or 0.0
    try:
        service = BudgetService(RedisSpend(redis), 15, "USD")
        service.limits = {"key:1": catalog_limit(tokens=1)}
        assert await service.reserve(None, 1, "m", 100, 100) is not None  # over, but let through
    finally:
        await redis.aclose()
    after = REGISTRY.get_sample_value("switchboard_shared_state_errors_total", labels)
    assert after == before + 1

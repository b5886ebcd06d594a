"""The usage writer cannot be poisoned (issue 24, finding 1), on SQLite and on a real PostgreSQL.

On PostgreSQL a NUL character or an int past 2^31 is an error, so one such row used to fail its
batch forever: no usage row from that worker was written again and the buffer was lost at
shutdown. Rows are now made storable before they are queued, and a row the database still
refuses is set aside (logged, counted) while the rest of its batch is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from switchboard.app import create_app
from switchboard.db.engine import is_postgres
from switchboard.usage.tables import UsageRecord
from tests.conftest import SettingsFactory, mint_key_in
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer

CHAT = "/v1/chat/completions"
INT32_MAX = 2**31 - 1
POISON_TOKENS = 13
"""Completion tokens of the answer the test database refuses (the fake echoes 13 words)."""


def ask(words: int = 2, model: str = "fake-model") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": " ".join(["w"] * words)}]}


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


@pytest.fixture
def live(
    database_url: str | None, make_settings: SettingsFactory, fake_upstream: FakeUpstream
) -> Iterator[LiveServer]:
    overrides: dict[str, Any] = {"usage_flush_interval": 3600}  # the test flushes by hand
    if database_url is not None:
        overrides["database_url"] = database_url
    app = create_app(make_settings(**overrides), upstream_transport=fake_upstream.transport())
    server = LiveServer(app).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def api(live: LiveServer) -> Iterator[httpx.Client]:
    secret = live.run(mint_key_in(live.app, "alice"))
    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=live.url, headers=headers, timeout=60) as client:
        yield client


def rows(live: LiveServer) -> list[dict[str, Any]]:
    live.run(live.app.state.resources.usage.flush())
    query = UsageRecord.select(
        UsageRecord.model,
        UsageRecord.status,
        UsageRecord.prompt_tokens,
        UsageRecord.completion_tokens,
        UsageRecord.total_tokens,
        UsageRecord.request_id,
    ).order_by(UsageRecord.id)
    return list(live.run(query.run()))


def refuse_poison_rows(live: LiveServer) -> None:
    """Make the real database refuse one kind of row, as it would any value the writer did not
    foresee: a trigger that raises for an answer of ``POISON_TOKENS`` completion tokens."""
    if is_postgres(live.app.state.resources.db):
        statements = [
            "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN "
            f"IF NEW.completion_tokens = {POISON_TOKENS} THEN RAISE EXCEPTION 'poison row'; "
            "END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON usage_records "
            "FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
        ]
    else:
        statements = [
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON usage_records "
            f"WHEN NEW.completion_tokens = {POISON_TOKENS} "
            "BEGIN SELECT RAISE(ABORT, 'poison row'); END"
        ]
    for statement in statements:
        live.run(UsageRecord.raw(statement).run())


def test_a_nul_in_the_model_name_does_not_stop_accounting(
    live: LiveServer, api: httpx.Client
) -> None:
    refused = api.post(CHAT, json=ask(model="fa\x00ke"))
    assert refused.status_code == 404
    assert [api.post(CHAT, json=ask()).status_code for _ in range(3)] == [200] * 3
    stored = rows(live)
    assert [(r["model"], r["status"]) for r in stored] == [
        ("fa\ufffdke", 404),
        ("fake-model", 200),
        ("fake-model", 200),
        ("fake-model", 200),
    ]
    assert stored[0]["request_id"] == refused.headers["x-request-id"]
    assert live.app.state.resources.usage.pending == 0


def test_token_counts_past_the_column_range_are_clamped_and_counted(
    live: LiveServer, api: httpx.Client, fake_upstream: FakeUpstream
) -> None:
    clamped = sample("switchboard_usage_clamped_total")
    assert api.post(CHAT, json=ask()).status_code == 200
    fake_upstream.prompt_tokens = 2**40  # a misbehaving model server
    assert api.post(CHAT, json=ask()).status_code == 200
    stored = rows(live)
    assert [(r["prompt_tokens"], r["total_tokens"]) for r in stored] == [
        (7, 9),
        (INT32_MAX, INT32_MAX),
    ]
    assert sample("switchboard_usage_clamped_total") == clamped + 1


def test_a_row_the_database_refuses_is_set_aside_and_the_rest_written(
    live: LiveServer, api: httpx.Client
) -> None:
    refuse_poison_rows(live)
    rejected = sample("switchboard_usage_rejected_total")
    answers = [api.post(CHAT, json=ask(words)) for words in (1, 2, POISON_TOKENS, 4, 5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert [r["completion_tokens"] for r in rows(live)] == [1, 2, 4, 5]
    assert sample("switchboard_usage_rejected_total") == rejected + 1
    assert live.app.state.resources.usage.pending == 0
    # later rows are written as before: nothing is stuck behind the refused one
    assert api.post(CHAT, json=ask(6)).status_code == 200
    assert [r["completion_tokens"] for r in rows(live)] == [1, 2, 4, 5, 6]


def test_shutdown_writes_every_storable_row_despite_a_refused_one(
    database_url: str | None,
    make_settings: SettingsFactory,
    fake_upstream: FakeUpstream,
) -> None:
    overrides: dict[str, Any] = {"usage_flush_interval": 3600}
    if database_url is not None:
        overrides["database_url"] = database_url
    settings = make_settings(**overrides)
    server = LiveServer(create_app(settings, upstream_transport=fake_upstream.transport()))
    server.start()
    try:
        refuse_poison_rows(server)
        secret = server.run(mint_key_in(server.app, "alice"))
        with httpx.Client(base_url=server.url, timeout=60) as client:
            client.headers["Authorization"] = f"Bearer {secret}"
            for words in (3, POISON_TOKENS, 8):
                assert client.post(CHAT, json=ask(words)).status_code == 200
        assert server.app.state.resources.usage.pending == 3  # still buffered
    finally:
        server.stop()  # the lifespan's last flush
    restarted = LiveServer(create_app(settings, upstream_transport=fake_upstream.transport()))
    restarted.start()
    try:
        query = UsageRecord.select(UsageRecord.completion_tokens).order_by(UsageRecord.id)
        assert [r["completion_tokens"] for r in restarted.run(query.run())] == [3, 8]
    finally:
        restarted.stop()

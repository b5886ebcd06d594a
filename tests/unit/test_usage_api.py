"""``GET /v1/usage``: a program reads its own usage, grouped; answers match the published schema."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from litestar.testing import AsyncTestClient

from switchboard.accounts.services import create_user
from tests.conftest import mint_key, mint_key_in
from tests.support.live import LiveServer

CHAT = "/v1/chat/completions"
USAGE = "/v1/usage"


def chat(text: str, model: str = "fake-model") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


async def some_usage(client: AsyncTestClient[Any]) -> None:
    for body in (chat("a b c"), chat("d e"), chat("x", model="gpt-x")):
        await client.post(CHAT, json=body)
    await client.app.state.resources.usage.flush()


async def published(client: AsyncTestClient[Any]) -> dict[str, Any]:
    response = await client.get("/docs/openapi.json")
    assert response.status_code == 200
    schema: dict[str, Any] = response.json()
    return schema


def validator(document: dict[str, Any], status: str) -> Any:
    operation = document["paths"]["/v1/usage"]["get"]
    body = operation["responses"][status]["content"]["application/json"]["schema"]
    return jsonschema_rs.validator_for({**body, "components": document["components"]})


async def test_own_usage_per_day_model_and_key(client: AsyncTestClient[Any]) -> None:
    await some_usage(client)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    by_day = (await client.get(USAGE)).json()
    assert by_day["user"] == "alice"
    assert [(b["group"], b["requests"], b["errors"]) for b in by_day["data"]] == [(today, 3, 1)]
    assert by_day["total"]["completion_tokens"] == 5
    assert by_day["start"] == today[:8] + "01"
    assert by_day["end"] == today
    by_model = (await client.get(USAGE, params={"group_by": "model"})).json()
    assert [(b["group"], b["total_tokens"]) for b in by_model["data"]] == [
        ("fake-model", 19),
        ("gpt-x", 0),
    ]
    by_key = (await client.get(USAGE, params={"group_by": "key"})).json()
    assert len(by_key["data"]) == 1
    assert by_key["data"][0]["group"].startswith("sk-sb-")
    assert isinstance(by_key["data"][0]["key_id"], int)
    yesterday = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    before = await client.get(USAGE, params={"start": "2020-01-01", "end": yesterday})
    assert before.json()["data"] == []


async def test_answers_conform_to_the_published_schema(client: AsyncTestClient[Any]) -> None:
    await some_usage(client)
    document = await published(client)
    parameters = {p["name"]: p for p in document["paths"]["/v1/usage"]["get"]["parameters"]}
    assert parameters["start"]["schema"]["format"] == "date"
    assert parameters["group_by"]["schema"]["enum"] == ["day", "model", "key"]
    ok = validator(document, "200")
    for group_by in ("day", "model", "key"):
        response = await client.get(USAGE, params={"group_by": group_by})
        assert response.status_code == 200
        ok.validate(response.json())
    edges = [
        {"start": "0001-01-01", "end": "9999-12-31"},
        {"start": "2030-01-02", "end": "2030-01-01"},
    ]
    for params in edges:  # the widest range, and an empty one: still valid requests
        response = await client.get(USAGE, params=params)
        assert response.status_code == 200, response.text
        ok.validate(response.json())
    refused = validator(document, "400")
    for params, param in [
        ({"start": "2026-13-01"}, "start"),
        ({"end": "20260101"}, "end"),
        ({"start": "2026-W01-1"}, "start"),
        ({"group_by": "week"}, "group_by"),
    ]:
        response = await client.get(USAGE, params=params)
        assert response.status_code == 400, (params, response.text)
        refused.validate(response.json())
        assert response.json()["error"]["param"] == param


async def test_only_admins_keys_read_another_persons_usage(client: AsyncTestClient[Any]) -> None:
    await some_usage(client)
    document = await published(client)
    await create_user("boss", role="admin")
    forbidden = await client.get(USAGE, params={"user": "boss"})
    assert forbidden.status_code == 403
    validator(document, "403").validate(forbidden.json())
    assert forbidden.json()["error"]["type"] == "permission_error"
    boss = {"Authorization": f"Bearer {await mint_key(client, 'boss')}"}
    theirs = (await client.get(USAGE, params={"user": "alice"}, headers=boss)).json()
    assert (theirs["user"], theirs["total"]["requests"]) == ("alice", 3)
    own = (await client.get(USAGE, headers=boss)).json()
    assert (own["user"], own["data"]) == ("boss", [])
    missing = await client.get(USAGE, params={"user": "nobody"}, headers=boss)
    assert missing.status_code == 404
    validator(document, "404").validate(missing.json())


@pytest.mark.parametrize("header", [None, "Bearer sk-sb-wrong"])
async def test_needs_a_valid_key(client: AsyncTestClient[Any], header: str | None) -> None:
    client.headers.pop("Authorization")
    headers = {"Authorization": header} if header else {}
    response = await client.get(USAGE, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_schemathesis_finds_no_issue_in_the_usage_operation(
    live_fake: LiveServer, tmp_path: Path
) -> None:
    """The same run as tests/integration/test_openapi_contract.py (every check), on this
    operation only: it needs no model server."""
    secret = live_fake.run(mint_key_in(live_fake.app, "fuzzer"))
    config = tmp_path / "schemathesis.toml"
    config.write_text("# defaults only\n")
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "--config-file",
            str(config),
            "run",
            f"{live_fake.url}/docs/openapi.json",
            "--checks",
            "all",
            "--include-path",
            USAGE,
            "--header",
            f"Authorization: Bearer {secret}",
            "--max-examples",
            "50",
            "--seed",
            "20261201",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout

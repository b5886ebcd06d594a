"""Inputs are bounded and scoped: conversation import (size, counts, lengths, clamped settings,
one transaction), search (escaped LIKE, only one's own conversations), page numbers, and the keys
page's usage (only one's own keys)."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from switchboard.accounts.services import create_user, get_user_by_name
from switchboard.chat.tables import Message
from switchboard.keys.tables import ApiKey
from switchboard.usage import queries as usage_queries
from switchboard.usage.queries import DailyTotal, daily_totals
from tests.conftest import WebFactory, mint_key_in
from tests.support.live import LiveServer
from tests.support.web_session import WebSession

MIB = 1024 * 1024


@pytest.fixture
def ada(live_fake: LiveServer, web: WebFactory) -> WebSession:
    live_fake.run(create_user("ada", password="ada-password"))  # pragma: allowlist secret
    live_fake.run(create_user("bob", password="bob-password"))  # pragma: allowlist secret
    session = web(live_fake.url)
    assert session.sign_in("ada", "ada-password").status_code == 303
    return session


@pytest.fixture
def bob(live_fake: LiveServer, web: WebFactory, ada: WebSession) -> WebSession:
    session = web(live_fake.url)
    assert session.sign_in("bob", "bob-password").status_code == 303
    return session


def conversation(title: str = "Imported one", **fields: Any) -> dict[str, Any]:
    fields.setdefault("messages", [{"role": "user", "content": "hello"}])
    return {"title": title, **fields}


def export_of(*conversations: dict[str, Any]) -> str:
    return json.dumps({"format": "switchboard.conversations", "version": 1,
                       "conversations": list(conversations)})  # fmt: skip


def upload(session: WebSession, body: str | bytes) -> httpx.Response:
    files = {"file": ("conversations.json", body, "application/json")}
    return session.http.post("/chat/import", files=files, headers={"x-csrftoken": session.csrf()})


def owned(session: WebSession) -> list[dict[str, Any]]:
    exported: list[dict[str, Any]] = json.loads(session.get("/chat/export.json").text)[
        "conversations"
    ]
    return exported


def listed(session: WebSession, query: str) -> list[str]:
    """The titles the sidebar lists for a search (htmx fragment), newest first."""
    response = session.http.get("/chat/list", params={"q": query}, headers={"hx-request": "true"})
    assert response.status_code == 200, response.text
    return re.findall(r'<a href="/chat/\d+"[^>]*>([^<]*)</a>', response.text)


# --- import: size ---------------------------------------------------------------------------


def test_an_import_just_over_8_mib_is_refused_with_a_clear_413(ada: WebSession) -> None:
    body = export_of(conversation(messages=[{"role": "user", "content": "a" * (8 * MIB)}]))
    assert 8 * MIB < len(body) < 8 * MIB + 4096
    response = upload(ada, body)
    assert response.status_code == 413, response.status_code
    assert "at most 8 MiB" in response.text
    assert 'id="import-file"' in response.text  # the chat page with its import form
    assert owned(ada) == []


def test_a_far_larger_import_is_refused_before_it_is_read(ada: WebSession) -> None:
    body = export_of(conversation(messages=[{"role": "user", "content": "a" * (12 * MIB)}]))
    response = upload(ada, body)
    assert response.status_code == 413, response.status_code
    assert "at most 8 MiB" in response.text
    # a plain browser form sends the CSRF token in the body: the limit holds there too
    token = ada.csrf()
    files = {"file": ("conversations.json", body, "application/json")}
    plain = ada.http.post("/chat/import", files=files, data={"_csrf_token": token})
    assert plain.status_code == 413, plain.status_code
    assert "at most 8 MiB" in plain.text
    assert owned(ada) == []


# --- import: counts and lengths -------------------------------------------------------------


def test_an_import_of_more_than_500_conversations_is_refused(ada: WebSession) -> None:
    response = upload(ada, export_of(*(conversation(f"c{n}") for n in range(501))))
    assert response.status_code == 400, response.status_code
    assert "At most 500 conversations" in response.text
    assert owned(ada) == []
    assert upload(ada, export_of(*(conversation(f"c{n}") for n in range(500)))).status_code == 303
    assert len(owned(ada)) == 500


def test_a_conversation_of_more_than_2000_messages_is_refused(ada: WebSession) -> None:
    many = [{"role": "user", "content": "x"}] * 2001
    response = upload(ada, export_of(conversation("fine"), conversation("long", messages=many)))
    assert response.status_code == 400, response.status_code
    assert "2 has more than 2000 messages" in response.text  # it names which one
    assert owned(ada) == []


def test_an_import_of_more_than_50000_messages_in_all_is_refused(ada: WebSession) -> None:
    many = [{"role": "user", "content": "x"}] * 2000
    response = upload(ada, export_of(*(conversation(f"c{n}", messages=many) for n in range(26))))
    assert response.status_code == 400, response.status_code
    assert "At most 50000 messages per import (this file has 52000)" in response.text
    assert owned(ada) == []


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("title", "t" * 201, "title is longer than 200 characters"),
        ("system_prompt", "s" * 20_001, "system prompt is longer than 20000 characters"),
        ("model", "m" * 129, "model name is longer than 128 characters"),
        ("messages", [{"role": "user", "content": "c" * 1_000_001}],
         "message 1 is longer than 1000000 characters"),
    ],
)  # fmt: skip
def test_overlong_fields_are_refused_by_name(
    ada: WebSession, field: str, value: Any, problem: str
) -> None:
    response = upload(ada, export_of(conversation(**{field: value})))
    assert response.status_code == 400, response.status_code
    assert problem in response.text
    assert owned(ada) == []


def test_settings_outside_the_forms_ranges_are_clamped(ada: WebSession) -> None:
    response = upload(ada, export_of(
        conversation("huge", max_tokens=2**40, temperature=7.5),
        conversation("tiny", max_tokens=-5, temperature=-3),
        conversation("beyond int64", max_tokens=2**80),
    ))  # fmt: skip
    assert response.status_code == 303, response.text
    settings = [(c["title"], c["max_tokens"], c["temperature"]) for c in owned(ada)]
    # as on the settings form: max tokens 1..model_max_len (2048 by default), temperature 0..2
    assert settings == [("huge", 2048, 2.0), ("tiny", 1, 0.0), ("beyond int64", 2048, 0.7)]


def test_a_failing_import_imports_nothing(
    ada: WebSession, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    original = Message.insert

    def insert(*rows: Message, **options: Any) -> Any:
        if any(row.content == "boom" for row in rows):
            raise RuntimeError("the disk is full")
        return original(*rows, **options)

    monkeypatch.setattr(Message, "insert", insert)
    first = conversation("first")
    second = conversation("second", messages=[{"role": "user", "content": "boom"}])
    response = upload(ada, export_of(first, second))
    assert response.status_code == 500
    assert owned(ada) == []  # the first conversation was rolled back with the second
    # the error page: the request id to quote, no internals; the trace is in the log
    request_id = response.headers["x-request-id"]
    assert "Something went wrong" in response.text
    assert request_id in response.text
    assert "the disk is full" not in response.text
    logged = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert [(r.exc_info or (None,))[0] for r in logged] == [RuntimeError]


# --- search ---------------------------------------------------------------------------------


def test_search_matches_percent_underscore_and_the_escape_character_literally(
    ada: WebSession,
) -> None:
    upload(ada, export_of(
        conversation("Budget", messages=[{"role": "user", "content": "we are 100% sure"}]),
        conversation("Naming", messages=[{"role": "user", "content": "use snake_case"}]),
        conversation("Excited", messages=[{"role": "user", "content": "wow! really"}]),
        conversation("Slashes", messages=[{"role": "user", "content": "a\\b"}]),
        conversation("Plain", messages=[{"role": "user", "content": "nothing special"}]),
    ))  # fmt: skip
    assert listed(ada, "") == ["Plain", "Slashes", "Excited", "Naming", "Budget"]
    assert listed(ada, "%") == ["Budget"]
    assert listed(ada, "_") == ["Naming"]
    assert listed(ada, "!") == ["Excited"]
    assert listed(ada, "\\") == ["Slashes"]
    assert listed(ada, "e_c") == ["Naming"]  # "_" is not "any one character"
    assert listed(ada, "100%") == ["Budget"]
    assert listed(ada, "BUDGET") == ["Budget"]  # titles, case-insensitively
    assert listed(ada, "SNAKE") == ["Naming"]  # message contents, case-insensitively
    assert listed(ada, "nomatch%") == []


def test_search_never_shows_another_users_conversation(ada: WebSession, bob: WebSession) -> None:
    upload(bob, export_of(
        conversation("Bob's plans", messages=[{"role": "user", "content": "zebra-secret 50%"}]),
    ))  # fmt: skip
    upload(ada, export_of(conversation("Ada's", messages=[{"role": "user", "content": "hi"}])))
    assert listed(ada, "zebra-secret") == []
    assert listed(ada, "%") == []
    assert listed(ada, "Bob") == []
    assert listed(bob, "zebra-secret") == ["Bob&#39;s plans"]


# --- page numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize("page_number", ["-1", str(10**30), "abc", "10001", "1.5"])
def test_bad_page_numbers_are_a_400_not_a_500(ada: WebSession, page_number: str) -> None:
    for htmx in (True, False):
        response = ada.http.get(
            "/chat/list", params={"page_number": page_number},
            headers={"hx-request": "true"} if htmx else {},
        )  # fmt: skip
        assert response.status_code == 400, (page_number, response.status_code)
        assert "page_number" in response.text


def test_pages_past_the_end_are_empty(ada: WebSession) -> None:
    upload(ada, export_of(*(conversation(f"c{n}") for n in range(25))))
    assert len(listed(ada, "")) == 20
    second = ada.http.get("/chat/list", params={"page_number": "1"}, headers={"hx-request": "true"})
    assert second.status_code == 200
    assert len(re.findall(r'href="/chat/\d+"', second.text)) == 5
    last = ada.http.get(
        "/chat/list", params={"page_number": "10000"}, headers={"hx-request": "true"}
    )
    assert last.status_code == 200
    assert re.findall(r'href="/chat/\d+"', last.text) == []


# --- the keys page --------------------------------------------------------------------------


def completion(live: LiveServer, secret: str) -> None:
    response = httpx.post(
        f"{live.url}/v1/chat/completions",
        json={"model": "fake-model", "messages": [{"role": "user", "content": "a b c d"}]},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 200, response.text


async def key_ids_of(username: str) -> list[int]:
    user = await get_user_by_name(username)
    assert user is not None
    rows = await ApiKey.select(ApiKey.id).where(ApiKey.user == user.id).output(as_list=True)
    return [int(key_id) for key_id in rows]


def test_the_keys_page_counts_only_the_users_own_keys(
    live_fake: LiveServer, web: WebFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[DailyTotal] = []

    async def spied(*args: Any, **kwargs: Any) -> list[DailyTotal]:
        totals = await daily_totals(*args, **kwargs)
        read.extend(totals)
        return totals

    monkeypatch.setattr(usage_queries, "daily_totals", spied)  # what the keys page's reader uses
    live_fake.run(create_user("ada", password="ada-password"))  # pragma: allowlist secret
    live_fake.run(create_user("bob", password="bob-password"))  # pragma: allowlist secret
    old = live_fake.run(mint_key_in(live_fake.app, "bob"))
    for _ in range(3):
        completion(live_fake, old)
    live_fake.run(live_fake.app.state.resources.usage.flush())
    [old_key] = live_fake.run(key_ids_of("bob"))

    # An operator clears out bob's old key; its usage rows stay (they outlive keys, by design),
    # and SQLite hands the freed id to the next key.
    async def remove_old_key() -> None:
        await ApiKey.delete().where(ApiKey.id == old_key)

    live_fake.run(remove_old_key())
    ada = web(live_fake.url)
    assert ada.sign_in("ada", "ada-password").status_code == 303
    assert ada.post("/keys", {"name": "laptop"}).status_code == 200
    assert live_fake.run(key_ids_of("ada")) == [old_key]  # the premise: the id was reused
    current = live_fake.run(mint_key_in(live_fake.app, "bob"))  # bob has usage right now too
    for _ in range(2):
        completion(live_fake, current)
    live_fake.run(live_fake.app.state.resources.usage.flush())

    read.clear()
    page = ada.get("/keys").text
    assert re.findall(r"\d+ requests · \d+ tokens", page) == ["0 requests · 0 tokens"]
    assert "<td>0 tokens · 0.0000 USD</td>" in page  # this month: none of bob's either
    assert read == []  # the page did not even read bob's keys' usage
    completion_by_ada = live_fake.run(mint_key_in(live_fake.app, "ada"))
    completion(live_fake, completion_by_ada)
    live_fake.run(live_fake.app.state.resources.usage.flush())
    page = ada.get("/keys").text
    assert sorted(re.findall(r"\d+ requests? · \d+ tokens", page)) == [
        "0 requests · 0 tokens", "1 request · 11 tokens"]  # fmt: skip
    assert {total.subject_id for total in read} == set(live_fake.run(key_ids_of("ada"))) - {old_key}

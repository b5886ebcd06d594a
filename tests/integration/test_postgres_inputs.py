"""Inputs are bounded and scoped, on a real PostgreSQL (stricter than SQLite: a negative OFFSET,
an int column over 2^31 or a NUL character is an error there, so a 500 unless the app prevents
it). The app runs in front of the fake model server, on a fresh database for each test."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

import pytest

from switchboard.accounts.services import create_user, get_user_by_name
from switchboard.chat.tables import Message
from switchboard.usage import queries as usage_queries
from switchboard.usage.queries import DailyTotal, daily_totals
from switchboard.usage.tables import UsageRecord
from tests.conftest import WebFactory, mint_key_in
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer
from tests.support.web_session import WebSession
from tests.unit.test_input_limits import (
    completion,
    conversation,
    export_of,
    key_ids_of,
    listed,
    owned,
    upload,
)

pytestmark = pytest.mark.postgres

_numbers = itertools.count(1)


Person = Callable[[], tuple[str, WebSession]]


@pytest.fixture
def person(pg_app: LiveServer, web: WebFactory) -> Person:
    """A new user (a fresh name: the database is shared by the module), signed in."""

    def make() -> tuple[str, WebSession]:
        name = f"user{next(_numbers)}"
        pg_app.run(create_user(name, password="long-enough-password"))  # pragma: allowlist secret
        session = web(pg_app.url)
        assert session.sign_in(name, "long-enough-password").status_code == 303
        return name, session

    return make


@pytest.mark.parametrize("page_number", ["-1", str(10**30), "10001", "abc"])
def test_bad_page_numbers_are_a_400_not_a_500(person: Person, page_number: str) -> None:
    _, session = person()
    for headers in ({"hx-request": "true"}, {}):
        response = session.http.get(
            "/chat/list", params={"page_number": page_number}, headers=headers
        )
        assert response.status_code == 400, (page_number, response.status_code)
        assert "page_number" in response.text
    last = session.http.get("/chat/list", params={"page_number": "10000"})
    assert last.status_code == 200


def test_import_clamps_settings_that_do_not_fit_the_columns(person: Person) -> None:
    _, session = person()
    response = upload(
        session,
        export_of(
            conversation("first", max_tokens=100),
            conversation("second", max_tokens=2**31, temperature=9.0),  # over PostgreSQL's integer
            conversation("third", max_tokens=-(2**40), temperature=-1.0),
        ),
    )
    assert response.status_code == 303, response.status_code
    settings = [(c["title"], c["max_tokens"], c["temperature"]) for c in owned(session)]
    assert settings == [("first", 100, 0.7), ("second", 2048, 2.0), ("third", 1, 0.0)]


def test_import_drops_nul_characters_postgresql_cannot_store(person: Person) -> None:
    _, session = person()
    response = upload(
        session,
        export_of(
            conversation(
                "nul\u0000title",
                system_prompt="be\u0000brief",
                messages=[{"role": "user", "content": "a\u0000b"}],
            )
        ),
    )
    assert response.status_code == 303, response.status_code
    [imported] = owned(session)
    assert (imported["title"], imported["system_prompt"]) == ("nultitle", "bebrief")
    assert imported["messages"][0]["content"] == "ab"


def test_nul_characters_in_the_forms_are_a_400_not_a_500(
    person: Person, fake_upstream: FakeUpstream
) -> None:
    _, session = person()
    chat = session.new_conversation()
    settings = {
        "system_prompt": "be\u0000brief",
        "model": "fake-model",
        "temperature": "0.5",
        "max_tokens": "64",
    }
    for path, form in [
        (f"/chat/{chat}/messages", {"content": "hello\u0000 there"}),
        (f"/chat/{chat}/edit", {"content": "edited\u0000 again"}),
        (f"/chat/{chat}/rename", {"title": "re\u0000named"}),
        (f"/chat/{chat}/settings", settings),
        (f"/chat/{chat}/messages", {"content": "\u0000"}),
    ]:
        response = session.post(path, form)
        assert response.status_code == 400, (path, response.status_code)
        assert "NUL character" in response.text
    search = session.http.get("/chat/list", params={"q": "re\u0000named"})
    assert search.status_code == 400
    assert fake_upstream.requests == []
    [stored] = owned(session)
    assert (stored["title"], stored["system_prompt"], stored["messages"]) == ("New chat", "", [])


def test_import_limits_hold_and_a_refused_import_adds_nothing(person: Person) -> None:
    _, session = person()
    refused = upload(session, export_of(conversation("ok"), conversation(model="m" * 129)))
    assert refused.status_code == 400  # a 500 on PostgreSQL before: varchar(128)
    assert "Conversation 2: the model name is longer than 128 characters" in refused.text
    assert owned(session) == []


def test_a_failing_import_imports_nothing(person: Person, monkeypatch: pytest.MonkeyPatch) -> None:
    _, session = person()
    original = Message.insert

    def insert(*rows: Message, **options: Any) -> Any:
        if any(row.content == "boom" for row in rows):
            raise RuntimeError("the disk is full")
        return original(*rows, **options)

    monkeypatch.setattr(Message, "insert", insert)
    second = conversation("second", messages=[{"role": "user", "content": "boom"}])
    assert upload(session, export_of(conversation("first"), second)).status_code == 500
    assert owned(session) == []


def test_search_is_literal_case_insensitive_and_ones_own(person: Person) -> None:
    _, ada = person()
    _, bob = person()
    upload(
        ada,
        export_of(
            conversation("Budget", messages=[{"role": "user", "content": "we are 100% sure"}]),
            conversation("Naming", messages=[{"role": "user", "content": "use snake_case"}]),
            conversation("Excited", messages=[{"role": "user", "content": "wow! really"}]),
            conversation("Slashes", messages=[{"role": "user", "content": "a\\b"}]),
        ),
    )
    upload(
        bob, export_of(conversation("Bob's", messages=[{"role": "user", "content": "Zebra 5%"}]))
    )
    assert listed(ada, "%") == ["Budget"]
    assert listed(ada, "_") == ["Naming"]
    assert listed(ada, "e_c") == ["Naming"]
    assert listed(ada, "!") == ["Excited"]
    assert listed(ada, "\\") == ["Slashes"]
    assert listed(ada, "SNAKE") == ["Naming"]  # ILIKE: case-insensitive
    assert listed(ada, "zebra") == []
    assert listed(bob, "zebra") == ["Bob&#39;s"]
    assert listed(bob, "%") == ["Bob&#39;s"]


def test_the_keys_page_counts_only_the_users_own_keys(
    pg_app: LiveServer, person: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[DailyTotal] = []

    async def spied(*args: Any, **kwargs: Any) -> list[DailyTotal]:
        totals = await daily_totals(*args, **kwargs)
        read.extend(totals)
        return totals

    monkeypatch.setattr(usage_queries, "daily_totals", spied)  # what the keys page's reader uses
    ada_name, ada = person()
    bob_name, _ = person()
    bobs = pg_app.run(mint_key_in(pg_app.app, bob_name))
    for _ in range(3):
        completion(pg_app, bobs)
    assert ada.post("/keys", {"name": "laptop"}).status_code == 200
    [ada_key] = pg_app.run(key_ids_of(ada_name))
    bob = pg_app.run(get_user_by_name(bob_name))
    assert bob is not None

    # a row of bob's recorded under ada's key id (ids come back after a restore, say)
    async def misattributed() -> None:
        await UsageRecord.insert(
            UsageRecord(key_id=ada_key, user_id=bob.id, model="fake-model", total_tokens=500)
        )

    pg_app.run(misattributed())
    pg_app.run(pg_app.app.state.resources.usage.flush())
    read.clear()
    page = ada.get("/keys").text
    assert re.findall(r"\d+ requests · \d+ tokens", page) == ["0 requests · 0 tokens"]
    assert read == []

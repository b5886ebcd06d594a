"""Hostile input gets the workspace's 4xx, never a 500 (issue 24, the workspace's half): a NUL in
a static path or a session cookie, ids beyond what the id columns hold on every id route, numbers
beyond the columns in forms, NUL characters in text inputs, conversation imports that are not
UTF-8, nest deeply or carry dates no page can show, and text with carriage returns in the
chat's event stream. On SQLite here; tests/integration/test_postgres_hostile.py does PostgreSQL.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from switchboard.accounts.services import create_user, get_user_by_name
from switchboard.accounts.tables import User
from switchboard.chat.tables import Conversation
from switchboard.keys.tables import ApiKey
from tests.conftest import WebFactory
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer
from tests.support.web_session import WebSession
from tests.unit.test_input_limits import conversation, export_of, owned, upload

PASSWORD = "a long enough password"  # pragma: allowlist secret
ID_PARAMETER = re.compile(r"\{(\w+):int\}")
BEYOND_THE_COLUMNS = [2**31, 2**63, 10**30]
"""PostgreSQL's integer ends at 2^31 - 1, SQLite's at 2^63 - 1; the third fits neither."""


@pytest.fixture
def boss(live_fake: LiveServer, web: WebFactory) -> WebSession:
    """An admin, signed in (admin routes take ids too)."""
    live_fake.run(create_user("boss", password=PASSWORD, role="admin"))
    session = web(live_fake.url)
    assert session.sign_in("boss", PASSWORD).status_code == 303
    return session


def unhandled(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage() == "unhandled error"]


def id_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path template) of every route that takes an id in its path."""
    found = set()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            for method in getattr(handler, "http_methods", ()):
                if method in ("GET", "POST") and ID_PARAMETER.search(route.path):
                    found.add((method, route.path))
    return sorted(found)


# --- anonymous ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/static/%00",
        "/static/switchboard%00.css",
        "/static/a/%00/b",
        "/static/" + "x" * 256,
        "/static/vendor/" + "é" * 128,
    ],
)
def test_a_nul_or_an_overlong_name_in_a_static_path_is_a_404_page(
    live_fake: LiveServer, web: WebFactory, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    response = web(live_fake.url).http.get(path)
    assert response.status_code == 404, response.status_code
    assert "Page not found" in response.text
    assert unhandled(caplog) == []


@pytest.mark.parametrize("value", ["%00", "abc%00def", "%ff%fe", "x" * 200, "../../etc"])
def test_a_malformed_session_cookie_is_ignored_and_cleared(
    live_fake: LiveServer, web: WebFactory, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    visitor = web(live_fake.url)
    visitor.http.cookies.set("sb_session", value)
    page = visitor.http.get("/signin")
    assert page.status_code == 200, page.status_code
    assert "sb_session=" in page.headers.get("set-cookie", "")  # cleared
    assert visitor.http.get("/chat").status_code == 303  # to sign in
    assert unhandled(caplog) == []


# --- ids ----------------------------------------------------------------------------------------


def test_every_id_route_answers_404_for_ids_beyond_the_columns(
    live_fake: LiveServer, boss: WebSession, caplog: pytest.LogCaptureFixture
) -> None:
    chat = boss.new_conversation()
    routes = id_routes(live_fake.app)
    assert len(routes) >= 15
    checked = 0
    for method, template in routes:
        for big in BEYOND_THE_COLUMNS:
            for name in ID_PARAMETER.findall(template):
                # one id out of range at a time, the others real (a conversation of boss's)
                def one_out(match: re.Match[str], name: str = name, big: int = big) -> str:
                    return str(big if match.group(1) == name else chat)

                path = ID_PARAMETER.sub(one_out, template)
                response = boss.get(path) if method == "GET" else boss.post(path, {})
                assert response.status_code == 404, (method, path, response.status_code)
                assert "does not exist" in response.text or "not found" in response.text
                checked += 1
    assert checked >= 45
    assert unhandled(caplog) == []


def test_numbers_beyond_the_columns_in_forms_are_refused(
    live_fake: LiveServer, boss: WebSession, caplog: pytest.LogCaptureFixture
) -> None:
    me = live_fake.run(get_user_by_name("boss"))
    assert me is not None
    for rpm, tpm in [(str(2**31), "5"), ("5", str(2**63)), (str(10**30), str(10**30))]:
        form = {"default_rpm": rpm, "default_tpm": tpm}
        response = boss.post(f"/admin/users/{me.id}/limits", form)
        assert response.status_code == 400, (rpm, tpm, response.status_code)
        assert "Limits are whole numbers from 1 to 2147483647." in response.text
    assert unhandled(caplog) == []


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/admin/budgets/limits/remove", {"kind": "key", "subject_id": "\u00b2"}),
        ("/admin/budgets/limits", {"kind": "key", "subject": "#\u00b2", "tokens": "5"}),
    ],
)
def test_digits_int_cannot_read_are_no_such_budget(
    boss: WebSession, caplog: pytest.LogCaptureFixture, path: str, form: dict[str, str]
) -> None:
    """ "²" is a digit to str.isdigit() but not to int() (found by the fuzz)."""
    response = boss.post(path, form)
    assert response.status_code == 400, response.status_code
    assert "No such" in response.text
    assert unhandled(caplog) == []


# --- NUL characters -----------------------------------------------------------------------------


async def nothing_stored() -> tuple[int, int, int]:
    """Keys, conversations, users besides boss."""
    return (
        await ApiKey.count(),
        await Conversation.count(),
        await User.count().where(User.username != "boss"),
    )


@pytest.mark.parametrize(
    ("method", "path", "form"),
    [
        ("POST", "/keys/", {"name": "a\x00b"}),
        ("POST", "/admin/users", {"username": "a\x00b", "password": PASSWORD}),
        ("POST", "/chat/new?x=%00", {}),
        ("GET", "/chat/list?q=a%00b", None),
        ("GET", "/admin/budgets/?user=a%00b", None),
        ("GET", "/signin?next=/%00", None),
        ("POST", "/admin/budgets/prices/remove", {"model": "a\x00b"}),
    ],
)
def test_a_nul_in_any_text_input_is_a_400_that_names_it(
    live_fake: LiveServer,
    boss: WebSession,
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    form: dict[str, str] | None,
) -> None:
    response = boss.get(path) if method == "GET" else boss.post(path, form)
    assert response.status_code == 400, (path, response.status_code)
    assert "NUL character" in response.text
    assert live_fake.run(nothing_stored()) == (0, 0, 0)
    assert unhandled(caplog) == []


def test_a_nul_in_a_chat_message_is_refused_in_place(
    live_fake: LiveServer, boss: WebSession
) -> None:
    chat = boss.new_conversation()
    refused = boss.post(f"/chat/{chat}/messages", {"content": "hello\x00 there"}, htmx=True)
    assert refused.status_code == 400
    assert "NUL character" in refused.text
    assert boss.post(f"/chat/{chat}/rename", {"title": "re\x00named"}).status_code == 400
    [stored] = owned(boss)
    assert (stored["title"], stored["messages"]) == ("New chat", [])


# --- imports ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            b'{"format": "switchboard.conversations", "conversations": [{"title": "\xff"}]}',
            "not UTF-8",
        ),
        (b"\xef\xbb\xbf" + b'{"a": "\xed\xa0\x80"}', "not UTF-8"),  # a lone surrogate
        (b"[" * 100_000 + b"]" * 100_000, "nests too deeply"),
        (b'{"a": ' * 5_000 + b"1" + b"}" * 5_000, "nests too deeply"),
    ],
)
def test_an_import_that_is_not_utf8_or_nests_too_deeply_is_a_400(
    boss: WebSession, caplog: pytest.LogCaptureFixture, body: bytes, problem: str
) -> None:
    response = upload(boss, body)
    assert response.status_code == 400, response.status_code
    assert problem in response.text
    assert owned(boss) == []
    assert unhandled(caplog) == []


@pytest.mark.parametrize(
    "when",
    [
        "0001-01-01T00:00:00+14:00",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59-14:00",
        "1969-12-31T23:59:59Z",
        "2100-01-01T00:00:01Z",
    ],
)
@pytest.mark.parametrize("where", ["conversation", "message"])
def test_an_import_dated_out_of_range_is_a_400_that_says_where(
    boss: WebSession, caplog: pytest.LogCaptureFixture, when: str, where: str
) -> None:
    if where == "conversation":
        item = conversation("dated", created_at=when, updated_at=when)
    else:
        message = {"role": "user", "content": "hi", "created_at": when}
        item = conversation("dated", messages=[message])
    response = upload(boss, export_of(conversation("fine"), item))
    assert response.status_code == 400, response.status_code
    assert "Conversation 2" in response.text
    assert "is outside 1970 to 2100" in response.text
    assert owned(boss) == []
    assert boss.get("/chat").status_code == 200
    assert unhandled(caplog) == []


def test_an_import_without_a_zone_is_read_as_utc(boss: WebSession) -> None:
    response = upload(boss, export_of(conversation("naive", updated_at="2024-03-01T10:00:00")))
    assert response.status_code == 303, response.status_code
    [imported] = owned(boss)
    assert imported["updated_at"].startswith("2024-03-01T10:00:00")
    assert imported["updated_at"].endswith(("Z", "+00:00"))


@pytest.mark.parametrize("stamp", [-62135596800, -1, 253402300799, 1e20, 1e300])
def test_chatgpt_times_out_of_range_are_left_out_not_a_500(
    boss: WebSession, caplog: pytest.LogCaptureFixture, stamp: float
) -> None:
    node = {
        "message": {"author": {"role": "user"}, "content": {"parts": ["hi"]}, "create_time": stamp}
    }
    body = json.dumps(
        [{"title": "old", "create_time": stamp, "update_time": stamp, "mapping": {"a": node}}]
    )
    response = upload(boss, body)
    assert response.status_code == 303, response.status_code
    [imported] = owned(boss)
    assert imported["title"] == "old"
    assert boss.get("/chat").status_code == 200
    assert unhandled(caplog) == []


# --- the chat's event stream --------------------------------------------------------------------


def browser_events(raw: str) -> list[tuple[str, str]]:
    """(event, data) as a browser's EventSource reads them (WHATWG HTML, 9.2.6): a line ends with
    CRLF, LF or CR; a blank line dispatches the event."""
    events: list[tuple[str, str]] = []
    name = ""
    data: list[str] = []
    for line in re.split(r"\r\n|\r|\n", raw):
        if not line:
            if data:
                events.append((name or "message", "\n".join(data)))
            name, data = "", []
        elif line.startswith("event:"):
            name = line[6:].removeprefix(" ")
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    return events


@pytest.mark.parametrize("breaks", ["\r", "\r\n", "\n", "\r\r\n\n"])
def test_line_breaks_in_an_error_reach_the_browser_as_one_event(
    live_fake: LiveServer, boss: WebSession, fake_upstream: FakeUpstream, breaks: str
) -> None:
    text = f"first{breaks}event: partial{breaks}data: injected{breaks}{breaks}last"
    fake_upstream.fail_with = (400, {"error": {"message": text, "type": "BadRequestError"}})
    chat = boss.new_conversation()
    sent = boss.post(f"/chat/{chat}/messages", {"content": "hi"}, htmx=True)
    stream = re.search(r'sse-connect="([^"]+/stream)"', sent.text)
    assert stream is not None
    with boss.http.stream("GET", stream.group(1)) as response:
        raw = "".join(response.iter_text())
    events = browser_events(raw)
    assert [name for name, _ in events] == ["done"], events
    [(_, done)] = events
    assert re.search(r"first\s+event: partial\s+data: injected\s+last", done), done

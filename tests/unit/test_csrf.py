"""CSRF defence in depth (issue 24): the token is bound to the session (a valid token of another
session, or the visitor's from before signing in, is refused), and a state-changing request
from another origin is refused with a clear 403 even with a valid token (Fetch Metadata, then
``Origin``); requests without those headers (curl, scripts) keep working on the token alone."""

from __future__ import annotations

import httpx
import pytest

from switchboard.accounts.services import create_user
from switchboard.app import create_app
from tests.conftest import SettingsFactory, WebFactory
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer
from tests.support.web_session import WebSession

PASSWORD = "a long enough password"  # pragma: allowlist secret
FOREIGN = "another site"
EXPIRED = "security token"


def person(live: LiveServer, web: WebFactory, name: str) -> WebSession:
    live.run(create_user(name, password=PASSWORD))
    session = web(live.url)
    assert session.sign_in(name, PASSWORD).status_code == 303
    return session


def new_chat(session: WebSession, headers: dict[str, str]) -> httpx.Response:
    return session.http.post("/chat/new", headers={"x-csrftoken": session.csrf(), **headers})


def chats(session: WebSession) -> int:
    return session.get("/chat/export.json").text.count('"title"')


# --- the token belongs to one session -------------------------------------------------------


def test_a_valid_token_of_another_session_is_refused(
    live_fake: LiveServer, web: WebFactory
) -> None:
    ada, bob = person(live_fake, web, "ada"), person(live_fake, web, "bob")
    # the attacker plants their own cookie and token pair (cookie tossing) next to ada's session
    token = bob.csrf()
    ada_session = ada.http.cookies["sb_session"]
    forged = httpx.Client(base_url=live_fake.url, follow_redirects=False)
    forged.cookies.set("sb_session", ada_session)
    forged.cookies.set("csrftoken", token)
    with forged:
        for response in (
            forged.post("/chat/new", headers={"x-csrftoken": token}),
            forged.post("/chat/new", data={"_csrf_token": token}),
        ):
            assert response.status_code == 403, response.status_code
            assert EXPIRED in response.text
    assert chats(ada) == 0
    assert new_chat(ada, {}).status_code == 303  # ada's own token works


def test_signing_in_makes_a_new_token_and_the_visitors_is_refused(
    live_fake: LiveServer, web: WebFactory
) -> None:
    live_fake.run(create_user("ada", password=PASSWORD))
    ada = web(live_fake.url)
    before = ada.csrf()  # the sign-in page's token (a visitor's)
    assert ada.sign_in("ada", PASSWORD).status_code == 303
    after = ada.csrf()
    assert after != before
    # the visitor's token and cookie (say, planted before the sign-in) with the new session
    with httpx.Client(base_url=live_fake.url) as fixated:
        fixated.cookies.set("sb_session", ada.http.cookies["sb_session"])
        fixated.cookies.set("csrftoken", before)
        stale = fixated.post("/chat/new", headers={"x-csrftoken": before})
    assert stale.status_code == 403
    assert EXPIRED in stale.text
    page = ada.get("/chat").text
    assert f'"x-csrftoken": "{after}"' in page
    assert f'name="_csrf_token" value="{after}"' in page
    assert new_chat(ada, {}).status_code == 303


def test_a_lost_csrf_cookie_comes_back_with_the_next_page(
    live_fake: LiveServer, web: WebFactory
) -> None:
    ada = person(live_fake, web, "ada")
    token = ada.csrf()
    ada.http.cookies.delete("csrftoken")  # the browser was restarted; the session lives on
    page = ada.get("/chat")
    assert page.status_code == 200
    assert f'"x-csrftoken": "{token}"' in page.text
    assert ada.csrf() == token
    assert new_chat(ada, {}).status_code == 303


def test_the_password_page_carries_the_new_sessions_token(
    live_fake: LiveServer, web: WebFactory
) -> None:
    ada = person(live_fake, web, "ada")
    old = ada.csrf()
    new = "another long passphrase"
    changed = ada.post("/account/password", {"current": PASSWORD, "new": new, "repeat": new})
    assert changed.status_code == 200
    token = ada.csrf()
    assert token != old
    assert f'name="_csrf_token" value="{token}"' in changed.text
    assert ada.http.post("/chat/new", data={"_csrf_token": old}).status_code == 403
    assert ada.http.post("/chat/new", data={"_csrf_token": token}).status_code == 303


def test_signing_out_leaves_a_token_to_sign_in_again(
    live_fake: LiveServer, web: WebFactory
) -> None:
    ada = person(live_fake, web, "ada")
    assert ada.post("/signout").status_code == 303
    assert ada.sign_in("ada", PASSWORD).status_code == 303  # no page loaded in between


# --- where the request comes from -------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"sec-fetch-site": "cross-site", "origin": "https://evil.example"},
        {"sec-fetch-site": "same-site", "origin": "https://files.example"},
        {"sec-fetch-site": "cross-site"},
        {"origin": "http://127.0.0.1.evil.example"},
    ],
)
def test_a_foreign_origin_is_refused_even_with_a_valid_token(
    live_fake: LiveServer, web: WebFactory, headers: dict[str, str]
) -> None:
    ada = person(live_fake, web, "ada")
    for htmx in ({}, {"hx-request": "true"}):
        refused = new_chat(ada, {**headers, **htmx})
        assert refused.status_code == 403, (headers, refused.status_code)
        assert FOREIGN in refused.text
        assert "You do not have access to this" in refused.text or htmx
    assert chats(ada) == 0
    assert ada.get("/chat", htmx=False).status_code == 200  # a link from anywhere still opens


def test_signing_in_from_a_foreign_origin_is_refused(
    live_fake: LiveServer, web: WebFactory
) -> None:
    live_fake.run(create_user("ada", password=PASSWORD))
    ada = web(live_fake.url)
    form = {"username": "ada", "password": PASSWORD}
    headers = {
        "x-csrftoken": ada.csrf(),
        "sec-fetch-site": "cross-site",
        "origin": "https://evil.example",
    }
    refused = ada.http.post("/signin", data=form, headers=headers)
    assert refused.status_code == 403
    assert "sb_session" not in ada.http.cookies


def own_origin(live: LiveServer) -> str:
    return live.url.rstrip("/")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"sec-fetch-site": "same-origin"},
        {"sec-fetch-site": "none"},
        {"sec-fetch-site": "same-origin", "origin": "OWN"},
        {"origin": "OWN"},
    ],
)
def test_same_origin_and_header_less_requests_pass(
    live_fake: LiveServer, web: WebFactory, headers: dict[str, str]
) -> None:
    ada = person(live_fake, web, "ada")
    sent = {k: v.replace("OWN", own_origin(live_fake)) for k, v in headers.items()}
    assert new_chat(ada, sent).status_code == 303


def test_the_public_url_is_our_origin_even_when_the_proxy_rewrites_host(
    make_settings: SettingsFactory, fake_upstream: FakeUpstream, web: WebFactory
) -> None:
    settings = make_settings(public_url="http://switchboard.example:8443")
    server = LiveServer(create_app(settings, upstream_transport=fake_upstream.transport()))
    server.start()
    try:
        ada = person(server, web, "ada")
        assert new_chat(ada, {"origin": "http://switchboard.example:8443"}).status_code == 303
        assert new_chat(ada, {"origin": "http://switchboard.example:9999"}).status_code == 403
    finally:
        server.stop()


def test_the_api_needs_no_origin_check(live_fake: LiveServer) -> None:
    """/v1 takes bearer keys, not cookies: no CSRF there, whatever the Origin."""
    response = httpx.post(
        f"{live_fake.url}/v1/chat/completions",
        json={"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]},
        headers={"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
    )
    assert response.status_code == 401  # no key: refused for that reason, not CSRF


def test_a_token_with_any_characters_is_a_403_not_a_500(
    live_fake: LiveServer, web: WebFactory, caplog: pytest.LogCaptureFixture
) -> None:
    ada = person(live_fake, web, "ada")
    for token in ("é" * 128, "\u2603", "x" * 5000, ada.csrf() + "é"):
        response = ada.http.post("/chat/new", headers={b"x-csrftoken": token.encode()})
        assert response.status_code == 403, token
    visitor = web(live_fake.url)
    odd = ("ü" * 128).encode()
    forged = {b"x-csrftoken": odd, b"cookie": b"csrftoken=" + odd}
    assert visitor.http.post("/signin", headers=forged).status_code == 403
    assert [r for r in caplog.records if r.getMessage() == "unhandled error"] == []

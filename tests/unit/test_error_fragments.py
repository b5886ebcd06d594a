"""Errors of htmx requests come back as a toast fragment in place, with their status; full
pages only for full-page loads (issue 21, item 5)."""

from __future__ import annotations

import httpx
import pytest

from switchboard.accounts.services import create_user
from tests.conftest import WebFactory
from tests.support.live import LiveServer
from tests.support.web_session import WebSession

PASSWORD = "ada's password"  # pragma: allowlist secret


@pytest.fixture
def ada(live_fake: LiveServer, web: WebFactory) -> WebSession:
    live_fake.run(create_user("ada", password=PASSWORD))
    session = web(live_fake.url)
    assert session.sign_in("ada", PASSWORD).status_code == 303
    return session


def assert_toast(response: httpx.Response, status: int, *texts: str) -> None:
    assert response.status_code == status
    assert response.headers["hx-retarget"] == "#toast"
    assert response.headers["hx-reswap"] == "innerHTML"
    body = response.text
    assert "<html" not in body
    assert "<title" not in body
    assert body.lstrip().startswith('<div class="toast">')
    assert "data-dismiss-toast" in body  # it can be dismissed
    assert f"Error {status}" in body
    assert response.headers["x-request-id"] in body
    for text in texts:
        assert text in body


def assert_page(response: httpx.Response, status: int, *texts: str) -> None:
    assert response.status_code == status
    assert "hx-retarget" not in response.headers
    assert "<html" in response.text
    assert 'class="error-page"' in response.text
    for text in texts:
        assert text in response.text


def test_a_missing_page_is_a_toast_for_htmx_and_a_page_otherwise(ada: WebSession) -> None:
    assert_toast(ada.get("/chat/999999", htmx=True), 404, "That conversation does not exist.")
    assert_page(ada.get("/chat/999999"), 404, "That conversation does not exist.")
    boosted = ada.http.get("/chat/999999", headers={"hx-request": "true", "hx-boosted": "true"})
    assert_page(boosted, 404)  # a boosted link swaps whole pages


def test_a_refused_action_is_a_toast_with_its_status(ada: WebSession) -> None:
    fresh = ada.new_conversation()
    refused = ada.post(f"/chat/{fresh}/regenerate", htmx=True)
    assert_toast(refused, 400, "There is no question to answer again yet.")
    assert_page(ada.post(f"/chat/{fresh}/regenerate"), 400, "There is no question")


def test_a_bad_query_and_a_foreign_origin_are_toasts(ada: WebSession) -> None:
    bad = ada.http.get("/chat/list", params={"page_number": "abc"}, headers={"hx-request": "true"})
    assert_toast(bad, 400, "page_number")
    foreign = ada.http.post(
        "/chat/new",
        headers={"x-csrftoken": ada.csrf(), "hx-request": "true", "origin": "https://evil.example"},
    )
    assert_toast(foreign, 403, "You do not have access to this")


def test_an_expired_session_still_goes_to_sign_in(live_fake: LiveServer, web: WebFactory) -> None:
    stranger = web(live_fake.url)
    htmx = stranger.get("/chat/list", htmx=True)
    assert htmx.status_code == 401
    assert htmx.headers["hx-redirect"] == "/signin?next=%2Fchat%2Flist"
    assert stranger.get("/chat/list").status_code == 303

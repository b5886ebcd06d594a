"""Sessions (fixation, anonymous visitors, sign-out, purge, password changes) and sign-in
(normalised names, growing delays per account and per address, proxies, argon2 off the loop)."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from typing import Any

import pytest

from switchboard.accounts import services
from switchboard.accounts.services import create_user
from switchboard.accounts.sessions import DatabaseStore
from switchboard.accounts.tables import Session
from switchboard.accounts.throttle import ACCOUNT, MemoryFailures, SignInThrottle
from switchboard.app import create_app
from switchboard.db.engine import build_engine, close_engine, open_engine
from switchboard.db.registry import install_engine, migrate
from switchboard.keys.tables import ApiKey
from switchboard.web.forwarded import real_client
from tests.conftest import SettingsFactory
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer
from tests.support.web_session import WebSession

PASSWORD = "correct horse battery"
COOKIE = "sb_session"


def plant(session: WebSession, value: str) -> None:
    """Put a session cookie in the browser as the server would have (same domain and path)."""
    session.http.cookies.set(COOKIE, value, domain="127.0.0.1", path="/")


async def count_sessions(key: str | None = None) -> int:
    query = Session.count() if key is None else Session.count().where(Session.key == key)
    return int(await query)


def sessions_stored(server: LiveServer, key: str | None = None) -> int:
    return server.run(count_sessions(key))


def signed_in(session: WebSession) -> bool:
    response = session.get("/chat")
    return response.status_code == 200


@pytest.fixture
def admin(live_fake: LiveServer) -> LiveServer:
    live_fake.run(create_user("admin", password=PASSWORD, role="admin"))
    return live_fake


def test_a_planted_session_id_is_not_kept_at_sign_in(admin: LiveServer) -> None:
    planted = "a" * 64
    with WebSession(admin.url) as victim, WebSession(admin.url) as attacker:
        plant(victim, planted)
        assert victim.sign_in("admin", PASSWORD).status_code == 303
        assert victim.http.cookies[COOKIE] != planted
        assert signed_in(victim)
        plant(attacker, planted)
        assert not signed_in(attacker)


def test_sign_in_issues_a_new_id_even_over_a_real_session(admin: LiveServer) -> None:
    with WebSession(admin.url) as browser:
        assert browser.sign_in("admin", PASSWORD).status_code == 303
        first = browser.http.cookies[COOKIE]
        assert browser.sign_in("admin", PASSWORD).status_code == 303
        second = browser.http.cookies[COOKIE]
        assert second != first
        assert sessions_stored(admin, first) == 0
        assert signed_in(browser)


def test_anonymous_visitors_store_nothing_and_get_no_session_cookie(admin: LiveServer) -> None:
    with WebSession(admin.url) as browser:
        for _ in range(20):
            response = browser.get("/signin")
            assert response.status_code == 200
            assert COOKIE not in response.headers.get("set-cookie", "")
        assert (
            browser.post("/signin", {"username": "admin", "password": "wrong"}).status_code == 400
        )
    assert sessions_stored(admin) == 0


def test_sign_out_deletes_the_session(admin: LiveServer) -> None:
    with WebSession(admin.url) as browser, WebSession(admin.url) as copy:
        browser.sign_in("admin", PASSWORD)
        stolen = browser.http.cookies[COOKIE]
        assert sessions_stored(admin) == 1
        assert browser.post("/signout").status_code == 303
        assert sessions_stored(admin) == 0
        plant(copy, stolen)
        assert not signed_in(copy)


async def test_expired_sessions_are_purged(make_settings: SettingsFactory) -> None:
    # only the database (the app's lifespan would also start the hourly purge, a race here)
    url = make_settings().resolved_database_url
    engine = build_engine(url)
    install_engine(engine)
    await open_engine(engine, 1)
    try:
        await migrate(url)
        store = DatabaseStore()
        await store.set("fresh", b"{}", expires_in=3600)
        await store.set("stale", b"{}", expires_in=3600)
        old = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        await Session.update({Session.expires_at: old}).where(Session.key == "stale")
        assert await store.purge_expired() == 1
        assert await store.exists("fresh")
        assert not await store.exists("stale")
    finally:
        await close_engine(engine)


def test_changing_the_password_ends_every_other_session(admin: LiveServer) -> None:
    with WebSession(admin.url) as here, WebSession(admin.url) as elsewhere:
        here.sign_in("admin", PASSWORD)
        elsewhere.sign_in("admin", PASSWORD)
        short = {"current": PASSWORD, "new": "short", "repeat": "short"}
        refused = here.post("/account/password", short)
        assert refused.status_code == 400
        assert "at least 12 characters" in refused.text
        wrong = {"current": "not it", "new": "x" * 12, "repeat": "x" * 12}
        assert here.post("/account/password", wrong).status_code == 400
        new = "a much longer passphrase"
        changed = here.post("/account/password", {"current": PASSWORD, "new": new, "repeat": new})
        assert changed.status_code == 200
        assert "was changed" in changed.text
        assert signed_in(here)
        assert not signed_in(elsewhere)
        assert elsewhere.sign_in("admin", PASSWORD).status_code == 400
        assert elsewhere.sign_in("admin", new).status_code == 303


def test_an_admin_reset_ends_the_members_sessions(admin: LiveServer) -> None:
    member = admin.run(create_user("member", password=PASSWORD))
    with WebSession(admin.url) as boss, WebSession(admin.url) as them:
        boss.sign_in("admin", PASSWORD)
        them.sign_in("member", PASSWORD)
        assert signed_in(them)
        short = boss.post(f"/admin/users/{member.id}/password", {"password": "elevenchars"})
        assert short.status_code == 400
        reset = boss.post(f"/admin/users/{member.id}/password", {"password": "twelve chars"})
        assert reset.status_code == 200
        assert not signed_in(them)
        assert them.sign_in("member", "twelve chars").status_code == 303


def test_admins_cannot_create_users_with_short_passwords(admin: LiveServer) -> None:
    with WebSession(admin.url) as boss:
        boss.sign_in("admin", PASSWORD)
        form = {"username": "newbie", "password": "elevenchars", "role": "member"}
        response = boss.post("/admin/users", form)
        assert response.status_code == 400
        assert "at least 12 characters" in response.text
        created = boss.post("/admin/users", {**form, "password": "twelve chars"})
        assert created.status_code == 200


@pytest.mark.parametrize("variant", [" admin", "admin\t", "\nadmin", "ADMIN", " Admin "])
def test_the_throttle_and_the_lookup_see_the_same_name(admin: LiveServer, variant: str) -> None:
    with WebSession(admin.url) as browser:
        for _ in range(ACCOUNT.free):
            assert browser.sign_in("admin", "wrong").status_code == 400
        refused = browser.sign_in(variant, PASSWORD)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1


@pytest.mark.parametrize("variant", [" admin", "ADMIN", " Admin\t"])
def test_a_name_typed_with_spaces_or_capitals_signs_in(admin: LiveServer, variant: str) -> None:
    with WebSession(admin.url) as browser:
        assert browser.sign_in(variant, PASSWORD).status_code == 303
        assert signed_in(browser)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr("switchboard.accounts.throttle.time.time", clock)
    return clock


async def test_failures_grow_the_delay_instead_of_locking_the_account(clock: Clock) -> None:
    throttle = SignInThrottle(MemoryFailures())
    for _ in range(ACCOUNT.free):
        assert await throttle.retry_after("admin", "10.0.0.1") == 0
        await throttle.failed("admin", "10.0.0.1")
    waits = []
    for _ in range(10):
        waits.append(await throttle.retry_after("admin", "10.0.0.9"))  # any address
        await throttle.failed("admin", "10.0.0.9")
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0, 60.0]
    clock.now += 60.0
    assert await throttle.retry_after("admin", "10.0.0.9") == 0  # slowed, never locked
    await throttle.succeeded("admin", "10.0.0.9")
    clock.now += 0.001
    assert await throttle.retry_after("admin", "10.0.0.7") == 0


async def test_spraying_many_names_from_one_address_is_slowed(clock: Clock) -> None:
    throttle = SignInThrottle(MemoryFailures(max_keys=50))
    for number in range(20):
        assert await throttle.retry_after(f"name{number}", "10.0.0.1") == 0
        await throttle.failed(f"name{number}", "10.0.0.1")
    assert await throttle.retry_after("fresh-name", "10.0.0.1") == 1.0
    assert await throttle.retry_after("fresh-name", "10.0.0.2") == 0


def test_the_throttle_counts_the_forwarded_client_only_behind_a_trusted_proxy(
    make_settings: SettingsFactory, fake_upstream: FakeUpstream
) -> None:
    settings = make_settings(trusted_proxies="127.0.0.1/32")
    server = LiveServer(create_app(settings, upstream_transport=fake_upstream.transport()))
    server.start()
    try:
        server.run(create_user("admin", password=PASSWORD))
        with WebSession(server.url) as proxy:
            for number in range(25):  # 25 clients, each under its own address's free tries
                proxy.http.headers["x-forwarded-for"] = f"203.0.113.{number}"
                assert proxy.sign_in(f"nobody{number}", "wrong").status_code == 400
            proxy.http.headers["x-forwarded-for"] = "198.51.100.7"
            assert proxy.sign_in("admin", PASSWORD).status_code == 303
    finally:
        server.stop()


def test_forwarded_headers_from_an_untrusted_peer_are_ignored(admin: LiveServer) -> None:
    with WebSession(admin.url) as client:
        for number in range(20):  # the spoofed address changes; the peer stays 127.0.0.1
            client.http.headers["x-forwarded-for"] = f"203.0.113.{number}"
            assert client.sign_in(f"nobody{number}", "wrong").status_code == 400
        client.http.headers["x-forwarded-for"] = "198.51.100.7"
        assert client.sign_in("admin", PASSWORD).status_code == 429


@pytest.mark.parametrize(
    ("peer", "header", "client"),
    [
        ("10.0.0.2", "203.0.113.9", "203.0.113.9"),
        ("10.0.0.2", "198.51.100.1, 203.0.113.9", "203.0.113.9"),  # the left part is forgeable
        ("10.0.0.2", "203.0.113.9, 10.0.0.3", "203.0.113.9"),  # a second trusted hop
        ("10.0.0.2", "", "10.0.0.2"),
        ("10.0.0.2", "not-an-address", "10.0.0.2"),
        ("192.0.2.1", "203.0.113.9", "192.0.2.1"),  # the peer is no proxy of ours
    ],
)
def test_the_real_client_is_the_rightmost_untrusted_hop(
    peer: str, header: str, client: str
) -> None:
    import ipaddress

    assert real_client(peer, header, [ipaddress.ip_network("10.0.0.0/24")]) == client


async def test_passwords_are_checked_off_the_loop_and_unknown_names_cost_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked: list[tuple[str, str]] = []
    real = services._hasher

    class Watched:
        def verify(self, stored: str, password: str) -> Any:
            checked.append((threading.current_thread().name, stored))
            return real.verify(stored, password)

    monkeypatch.setattr(services, "_hasher", Watched())
    assert not await services.check_password(None, "anything")
    loop_thread = threading.current_thread().name
    assert len(checked) == 1
    thread, stored = checked[0]
    assert thread != loop_thread
    assert thread.startswith("argon2")
    assert stored.startswith("$argon2")  # a real (dummy) hash was verified


async def test_a_burst_of_sign_ins_does_not_stall_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    user = type("U", (), {"password_hash": services.hash_password(PASSWORD)})()
    ticks = 0

    async def ticker(stop: asyncio.Event) -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    stop = asyncio.Event()
    task = asyncio.create_task(ticker(stop))
    results = await asyncio.gather(*(services.check_password(user, PASSWORD) for _ in range(6)))
    stop.set()
    await task
    assert results == [True] * 6
    assert ticks > 100  # the loop kept turning while the hashes ran (on it: about 6)


async def active_keys() -> int:
    return int(await ApiKey.count().where(ApiKey.revoked_at.is_null()))


def test_key_limit_per_user(admin: LiveServer) -> None:
    with WebSession(admin.url) as browser:
        browser.sign_in("admin", PASSWORD)
        for number in range(20):
            assert browser.post("/keys/", {"name": f"k{number}"}).status_code == 200
        refused = browser.post("/keys/", {"name": "one too many"})
        assert "the most allowed" in refused.text
    assert admin.run(active_keys()) == 20


def test_http_client_sees_no_stack_trace_for_bad_forms(admin: LiveServer) -> None:
    with WebSession(admin.url) as browser:
        response = browser.http.post(
            "/signin",
            content=b"\xff\xfe=%%%",
            headers={
                "content-type": "application/x-www-form-urlencoded",
                "x-csrftoken": browser.csrf(),
            },
        )
        assert response.status_code == 400
        assert "Traceback" not in response.text


@pytest.mark.parametrize(
    ("path", "exempt"),
    [
        ("/v1/chat/completions", True),
        ("/v1", True),
        ("/static/switchboard.css", True),
        ("/healthz", True),
        ("/chat/v1", False),
        ("/v1x", False),
        ("/keys/healthz", False),
        ("/admin/users/static/", False),
    ],
)
def test_session_and_csrf_exemptions_match_whole_path_prefixes(path: str, exempt: bool) -> None:
    import re

    from switchboard.app import NO_SESSION_PATHS

    assert bool(re.compile("|".join(NO_SESSION_PATHS)).search(path)) is exempt


def test_behind_https_cookies_are_secure_and_host_prefixed(
    make_settings: SettingsFactory, fake_upstream: FakeUpstream
) -> None:
    settings = make_settings(public_url="https://switchboard.example")
    server = LiveServer(create_app(settings, upstream_transport=fake_upstream.transport()))
    server.start()
    try:
        server.run(create_user("admin", password=PASSWORD))
        with WebSession(server.url) as browser:
            page = browser.http.get("/signin")
            csrf = page.cookies["__Host-csrftoken"]
            assert "secure" in page.headers["set-cookie"].lower()
            signed = browser.http.post(
                "/signin",
                data={"username": "admin", "password": PASSWORD},
                # over plain http a client keeps Secure cookies to itself: send it as a browser
                # behind the TLS proxy would
                headers={"x-csrftoken": csrf, "cookie": f"__Host-csrftoken={csrf}"},
            )
            assert signed.status_code == 303
            cookie = next(
                c
                for c in signed.headers.get_list("set-cookie")
                if c.startswith("__Host-sb_session=")
            )
            attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
            assert {"secure", "httponly", "path"} <= attributes
            assert "domain" not in attributes
    finally:
        server.stop()

"""Admins create, disable and re-enable users and set their default limits; members cannot."""

from __future__ import annotations

from switchboard.accounts.services import create_user
from switchboard.accounts.tables import User
from tests.conftest import WebFactory
from tests.support.live import LiveServer


async def _user(name: str) -> dict[str, object] | None:
    row: dict[str, object] | None = await User.select().where(User.username == name).first()
    return row


def test_admin_manages_users_and_members_cannot(live_fake: LiveServer, web: WebFactory) -> None:
    live_fake.run(create_user("boss", password="boss-password", role="admin"))
    live_fake.run(create_user("max", password="max-password"))
    boss, max_ = web(live_fake.url), web(live_fake.url)
    assert boss.sign_in("boss", "boss-password").status_code == 303
    assert max_.sign_in("max", "max-password").status_code == 303

    assert max_.get("/admin/users").status_code == 403
    assert max_.post("/admin/users", {"username": "x", "password": "12345678"}).status_code == 403

    created = boss.post("/admin/users", {"username": "zoe", "password": "zoe-password-long"})
    assert created.status_code == 200
    assert "Created zoe." in created.text
    assert (
        boss.post("/admin/users", {"username": "zoe", "password": "zoe-password-long"}).status_code
        == 400
    )
    short = boss.post("/admin/users", {"username": "amy", "password": "short"})
    assert short.status_code == 400
    assert "at least 12" in short.text

    zoe = live_fake.run(_user("zoe"))
    assert zoe is not None
    limits = boss.post(
        f"/admin/users/{zoe['id']}/limits", {"default_rpm": "7", "default_tpm": "700"}
    )
    assert limits.status_code == 200
    bad = boss.post(f"/admin/users/{zoe['id']}/limits", {"default_rpm": "-1", "default_tpm": "x"})
    assert bad.status_code == 400
    zoe = live_fake.run(_user("zoe"))
    assert zoe is not None
    assert zoe["default_rpm"] == 7

    # disabling ends the user's sessions and sign-ins; enabling restores them
    max_row = live_fake.run(_user("max"))
    assert max_row is not None
    assert boss.post(f"/admin/users/{max_row['id']}/active").status_code == 200
    assert max_.get("/chat").status_code == 303  # signed out
    assert web(live_fake.url).sign_in("max", "max-password").status_code == 400
    boss.post(f"/admin/users/{max_row['id']}/active")
    assert web(live_fake.url).sign_in("max", "max-password").status_code == 303
    boss_row = live_fake.run(_user("boss"))
    assert boss_row is not None
    mine = boss.post(f"/admin/users/{boss_row['id']}/active")
    assert "cannot disable your own" in mine.text

"""Bearer API keys on /v1: every way a key can be wrong is a 401 in OpenAI's shape."""

import datetime as dt
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from switchboard.accounts.tables import User
from switchboard.keys.services import KEY_PREFIX, hash_key
from switchboard.keys.tables import ApiKey
from tests.conftest import mint_key

CHAT = "/v1/chat/completions"
BODY = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}


def assert_401(response: Any) -> dict[str, Any]:
    assert response.status_code == 401, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "invalid_api_key"
    assert response.headers["www-authenticate"].startswith("Bearer")
    return error


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Basic dXNlcjpwYXNz", "Bearer", "Bearer sk-sb-unknown", "Bearer not-a-key"],
)
async def test_missing_or_unknown_keys_are_401(
    client: AsyncTestClient[Any], authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    del client.headers["Authorization"]
    for path in (CHAT, "/v1/models"):
        method = client.post if path == CHAT else client.get
        kwargs: dict[str, Any] = {"json": BODY} if path == CHAT else {}
        assert_401(await method(path, headers=headers, **kwargs))


async def test_a_valid_key_is_accepted_and_stored_only_as_a_hash(
    client: AsyncTestClient[Any],
) -> None:
    secret = await mint_key(client, "bob")
    assert secret.startswith(KEY_PREFIX)
    assert len(secret) - len(KEY_PREFIX) >= 43  # 32 random bytes, base64url: 256 bits
    response = await client.post(CHAT, json=BODY, headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200
    stored = await ApiKey.select().where(ApiKey.key_hash == hash_key(secret)).first()
    assert stored is not None
    assert secret not in str(stored.values())
    assert secret.startswith(stored["prefix"])


async def test_a_revoked_key_is_refused_at_once(client: AsyncTestClient[Any]) -> None:
    secret = await mint_key(client, "carol")
    auth = {"Authorization": f"Bearer {secret}"}
    assert (await client.get("/v1/models", headers=auth)).status_code == 200
    key = await ApiKey.objects().where(ApiKey.key_hash == hash_key(secret)).first()
    assert key is not None
    keys = client.app.state.resources.keys
    assert await keys.revoke(int(key.id)) is True
    assert await keys.revoke(int(key.id)) is False  # already revoked
    assert_401(await client.get("/v1/models", headers=auth))


async def test_an_expired_key_is_refused(client: AsyncTestClient[Any]) -> None:
    secret = await mint_key(client, "dave", expires_days=1)
    await ApiKey.update(
        {ApiKey.expires_at: dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)}
    ).where(ApiKey.key_hash == hash_key(secret))
    client.app.state.resources.keys._cache.clear()
    assert_401(await client.get("/v1/models", headers={"Authorization": f"Bearer {secret}"}))


async def test_a_disabled_users_keys_are_refused(client: AsyncTestClient[Any]) -> None:
    secret = await mint_key(client, "erin")
    await User.update({User.is_active: False}).where(User.username == "erin")
    client.app.state.resources.keys._cache.clear()
    assert_401(await client.get("/v1/models", headers={"Authorization": f"Bearer {secret}"}))


async def test_revoking_only_touches_the_owners_keys(client: AsyncTestClient[Any]) -> None:
    secret = await mint_key(client, "frank")
    key = await ApiKey.objects().where(ApiKey.key_hash == hash_key(secret)).first()
    other = await User.objects().where(User.username == "alice").first()
    assert key is not None
    assert other is not None
    keys = client.app.state.resources.keys
    assert await keys.revoke(int(key.id), user_id=int(other.id)) is False
    response = await client.get("/v1/models", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200

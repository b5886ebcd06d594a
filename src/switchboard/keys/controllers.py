"""The API keys page: create (secret shown once), list, revoke — one's own keys only; and what a
client needs to use one: the full base URL, snippets to paste, each key's effective limits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Template

from switchboard.accounts.guards import current_user, requires_user
from switchboard.keys.services import KeyLimitError, KeyService
from switchboard.settings import Settings
from switchboard.web.rendering import page

KeyUsageReader = Callable[[int, dt.datetime], Awaitable[dict[int, tuple[int, int]]]]
"""Requests and tokens per key of one user since a time: the usage feature answers (the app
wires it in as ``key_usage``; keys never import usage, which labels its rows with keys)."""


class NewKeyForm(msgspec.Struct):
    name: str = ""
    expires_days: str = ""


def api_base_url(public_url: str, request_base: str) -> str:
    """The ``/v1`` base URL a client needs: under ``SWITCHBOARD_PUBLIC_URL`` when it is set (the
    address people use behind a proxy), else under the address this request came to."""
    return f"{(public_url or request_base).rstrip('/')}/v1"


def as_utc(when: dt.datetime) -> dt.datetime:
    """A stored time in UTC (a naive one is UTC already: the database keeps UTC)."""
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


class KeysController(Controller):
    path = "/keys"
    guards = [requires_user]
    include_in_schema = False

    async def _render(
        self,
        request: Request[Any, Any, Any],
        keys: KeyService,
        settings: Settings,
        key_usage: KeyUsageReader,
        **extra: Any,
    ) -> Template:
        user = await current_user(request)
        assert user is not None
        listed = await keys.list_for_user(int(user.id))
        since = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
        usage = await key_usage(int(user.id), since)
        spend = await request.app.state.resources.budgets.describe(
            [f"key:{key['id']}" for key in listed], owner=int(user.id)
        )
        for key in listed:
            key["requests_30d"], key["tokens_30d"] = usage.get(key["id"], (0, 0))
            key["month"] = spend[f"key:{key['id']}"]
            # what the gateway enforces (keys/services.py KeyService._load): the key's own
            # limits, else its owner's (which also bound all the owner's keys together)
            if key["last_used_at"] is not None:  # shown in UTC, and said so
                key["last_used_at"] = as_utc(key["last_used_at"])
            key["own_limits"] = key["rpm"] is not None or key["tpm"] is not None
            key["rpm"] = user.default_rpm if key["rpm"] is None else key["rpm"]
            key["tpm"] = user.default_tpm if key["tpm"] is None else key["tpm"]
        context = {
            "user": user, "keys": listed, "created": None, "error": None,
            "base_url": api_base_url(settings.public_url, str(request.base_url)),
            "model": settings.default_model, **extra,
        }  # fmt: skip
        return page(
            request, "keys/page.html", context, status_code=400 if extra.get("error") else 200
        )

    @get("/", name="keys")
    async def index(
        self, request: Request[Any, Any, Any], keys: NamedDependency[KeyService],
        settings: NamedDependency[Settings], key_usage: NamedDependency[KeyUsageReader],
    ) -> Template:  # fmt: skip
        return await self._render(request, keys, settings, key_usage)

    @post("/", status_code=200)
    async def create(
        self, request: Request[Any, Any, Any], data: URLEncodedBody[NewKeyForm],
        keys: NamedDependency[KeyService], settings: NamedDependency[Settings],
        key_usage: NamedDependency[KeyUsageReader],
    ) -> Template:  # fmt: skip
        user = await current_user(request)
        assert user is not None
        expires: float | None = None
        if data.expires_days.strip():
            try:
                expires = float(data.expires_days)
                if not 0 < expires <= 3650:
                    raise ValueError
            except ValueError:
                return await self._render(
                    request,
                    keys,
                    settings,
                    key_usage,
                    error="Expiry is a number of days, 1 to 3650.",
                )
        try:
            minted = await keys.mint(int(user.id), name=data.name.strip(), expires_days=expires)
        except KeyLimitError as exc:
            return await self._render(request, keys, settings, key_usage, error=str(exc))
        return await self._render(request, keys, settings, key_usage, created=minted)

    @post("/{key_id:int}/revoke", status_code=200)
    async def revoke(
        self,
        request: Request[Any, Any, Any],
        key_id: FromPath[int],
        keys: NamedDependency[KeyService],
        settings: NamedDependency[Settings],
        key_usage: NamedDependency[KeyUsageReader],
    ) -> Template:
        user = await current_user(request)
        assert user is not None
        if not await keys.revoke(key_id, user_id=int(user.id)):
            raise NotFoundException("That key does not exist or is already revoked.")
        return await self._render(request, keys, settings, key_usage)

"""Bearer API-key authentication for ``/v1``."""

from __future__ import annotations

from typing import Any

from litestar import Request

from switchboard.gateway.accounting import Caller
from switchboard.gateway.errors import GatewayError
from switchboard.keys.services import KeyService
from switchboard.web.request_id import request_id_of


def unauthorized(message: str) -> GatewayError:
    return GatewayError(
        401, message, type="invalid_request_error", code="invalid_api_key",
        headers={"WWW-Authenticate": 'Bearer realm="switchboard"'},
    )  # fmt: skip


async def authenticate(
    request: Request[Any, Any, Any], keys: KeyService, *, x_api_key: bool = False
) -> Caller:
    """The caller behind ``Authorization: Bearer sk-...`` (or, ``x_api_key``, Anthropic's
    ``x-api-key: sk-...``), or 401."""
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if x_api_key and not header and (api_key := request.headers.get("x-api-key", "")):
        scheme, secret, header = "bearer", api_key, api_key
    if not header:
        raise unauthorized(
            "You didn't provide an API key. Send it as `Authorization: Bearer sk-...`."
        )
    if scheme.lower() != "bearer" or not secret.strip():
        raise unauthorized("Malformed Authorization header: expected `Bearer sk-...`.")
    owner = await keys.authenticate(secret.strip())
    if owner is None:
        shown = secret.strip()[:10] + "..." if len(secret.strip()) > 10 else "(hidden)"
        raise unauthorized(
            f"Incorrect, expired or revoked API key provided: {shown}. "
            "Create a key with `switchboard keys create` or on the Keys page."
        )
    request.scope.setdefault("state", {})["user_id"] = owner.user_id  # for the access log
    return Caller(
        user_id=owner.user_id,
        key_id=owner.key_id,
        rpm=owner.rpm,
        tpm=owner.tpm,
        user_rpm=owner.user_rpm,
        user_tpm=owner.user_tpm,
        source="api",
        request_id=request_id_of(request.scope),
    )

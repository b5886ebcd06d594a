"""Gateway errors: one exception type that carries OpenAI's error shape and an HTTP status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from litestar.exceptions import HTTPException

from switchboard.db.engine import UNAVAILABLE as DATABASE_UNAVAILABLE
from switchboard.gateway.answers import ErrorBody, ErrorResponse


class GatewayError(Exception):
    """An error to show the caller: status, OpenAI ``type``/``code``/``param``, extra headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = dict(headers or {})

    def to_response(self) -> ErrorResponse:
        return ErrorResponse(ErrorBody(self.message, self.type, self.param, self.code))

    def to_json(self) -> bytes:
        return msgspec.json.encode(self.to_response())

    def to_anthropic_json(self, request_id: str = "") -> bytes:
        """Anthropic's error shape: ``{"type": "error", "error": {"type", "message"}}``."""
        kind = ANTHROPIC_TYPES.get(self.status, "api_error" if self.status >= 500 else
                                   "invalid_request_error")  # fmt: skip
        body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": self.message}}
        if request_id:
            body["request_id"] = request_id
        return msgspec.json.encode(body)


ANTHROPIC_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
    500: "api_error", 502: "api_error", 503: "overloaded_error", 504: "api_error",
}  # fmt: skip


def invalid_request(
    message: str, param: str | None = None, code: str | None = None
) -> GatewayError:
    return GatewayError(400, message, param=param, code=code)


def insufficient_quota(message: str, retry_after: int) -> GatewayError:
    """OpenAI's answer when the quota (here: a monthly budget) is used up."""
    return GatewayError(429, message, type="insufficient_quota", code="insufficient_quota",
                        headers={"Retry-After": str(max(1, retry_after))})  # fmt: skip


def model_not_found(model: str) -> GatewayError:
    return GatewayError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        code="model_not_found",
        param="model",
    )


def model_unavailable(model: str, why: str = "no model server is answering") -> GatewayError:
    return GatewayError(
        503,
        f"The model `{model}` is unavailable right now: {why}. Try again shortly.",
        type="server_error",
        code="model_unavailable",
        headers={"Retry-After": "5"},
    )


def upstream_timeout(model: str) -> GatewayError:
    return GatewayError(
        504, f"The model `{model}` took too long to answer.", type="server_error", code="timeout"
    )


def upstream_failed(model: str, exc: Exception) -> GatewayError:
    return GatewayError(
        502,
        f"The model server for `{model}` failed: {type(exc).__name__}.",
        type="server_error",
        code="upstream_error",
    )


def from_http_exception(status: int, detail: str, extra: object = None) -> GatewayError:
    """Map a framework error (validation, 404, 405, 413 ...) to OpenAI's error shape."""
    if status == 400 and isinstance(extra, list) and extra and isinstance(extra[0], dict):
        first = extra[0]
        param = first.get("key")
        message = str(first.get("message", detail))
        if message.startswith("Object missing required field"):
            missing = message.split("`")[1]
            param = missing if param in (None, "data") else f"{param}.{missing}"
        if param:
            return invalid_request(
                f"Invalid value for `{param}`: {message}", param=str(param), code="invalid_value"
            )
        return invalid_request(f"Invalid request body: {message}", code="invalid_json")
    kinds = {
        401: ("authentication_error", "invalid_api_key"),
        403: ("permission_error", "forbidden"),
        404: ("invalid_request_error", "not_found"),
        405: ("invalid_request_error", "method_not_allowed"),
        413: ("invalid_request_error", "request_too_large"),
        415: ("invalid_request_error", "unsupported_media_type"),
        429: ("rate_limit_error", "rate_limit_exceeded"),
    }
    if status >= 500:
        return GatewayError(
            status,
            "The server had an error while processing your request.",
            type="server_error",
            code="internal_error",
        )
    err_type, code = kinds.get(status, ("invalid_request_error", None))
    if status == 400 and "JSON" in detail:
        code = "invalid_json"
    return GatewayError(status, detail, type=err_type, code=code)


def service_unavailable(what: str) -> GatewayError:
    return GatewayError(
        503,
        f"The {what} is unavailable right now. Try again shortly.",
        type="server_error",
        code="service_unavailable",
        headers={"Retry-After": "5"},
    )


def as_gateway_error(exc: Exception) -> GatewayError:
    """Any exception as the error a caller sees: ours as raised, the framework's mapped, a
    database outage as 503, the unexpected as a plain 500 (the handler logs those)."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, DATABASE_UNAVAILABLE):
        return service_unavailable("database")
    if isinstance(exc, HTTPException):
        error = from_http_exception(exc.status_code, exc.detail, exc.extra)
        error.headers.update(exc.headers or {})
        return error
    return from_http_exception(500, "internal error")


def _error_fields(payload: bytes) -> dict[str, Any]:
    """The fields of a model server's error body, whichever shape it used (``{"error": {...}}``,
    nested once more, or flat); empty when it is not JSON."""
    try:
        body = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        return {}
    inner: Any = body if isinstance(body, dict) else {}
    while isinstance(inner.get("error"), dict):
        inner = inner["error"]
    return inner  # type: ignore[no-any-return]


def upstream_reason(status: int, payload: bytes) -> str:
    """What a model server said when it refused, for a message."""
    return _reason(status, _error_fields(payload))


def _reason(status: int, fields: dict[str, Any]) -> str:
    return str(fields.get("message") or f"model server answered {status}")


def upstream_error(status: int, payload: bytes) -> GatewayError:
    """Relay a model server's 4xx/5xx in OpenAI's shape, whichever error shape it used."""
    fields = _error_fields(payload)
    message = _reason(status, fields)
    err_type, code, param = fields.get("type"), fields.get("code"), fields.get("param")
    if status >= 500:
        return GatewayError(
            502, f"The model server failed: {message}", type="server_error", code="upstream_error"
        )
    return GatewayError(
        status,
        message,
        type=str(err_type) if isinstance(err_type, str) else "invalid_request_error",
        code=str(code) if code is not None and not isinstance(code, int) else None,
        param=str(param) if param is not None else None,
    )

"""All configuration, read once from ``SWITCHBOARD_*`` variables (and an optional ``.env``).

Nothing else in the code base reads the environment. Every field has a default that works for the
embedded stack on one machine; ``.env.example`` lists them all.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

import msgspec
from dotenv import dotenv_values

PREFIX = "SWITCHBOARD_"
FILE_SUFFIX = "_FILE"
"""``SWITCHBOARD_X_FILE=/run/secrets/x``: the file's content (stripped) is the value of ``x``."""
DEVELOPMENT_SECRET = "dev-insecure-secret-change-me"  # noqa: S105 - dev only  # nosec B105
EXAMPLE_SECRETS = frozenset({DEVELOPMENT_SECRET, "changethis", "change-me", "secret", ""})
MIN_SECRET_BYTES = 32


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names the environment variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Typed settings. Field ``foo_bar`` is read from ``SWITCHBOARD_FOO_BAR``."""

    environment: Literal["development", "test", "production"] = "development"
    """``production`` refuses example secrets and marks session cookies Secure."""
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    """Gateway worker processes (granian). More than one needs ``redis_url``: limits, the
    sign-in throttle and key revocations must be shared by the workers."""
    public_url: str = ""
    """External URL (behind a proxy); defaults to http://host:port. The keys page shows it (+
    ``/v1``) as the clients' base URL; empty: the address the page was opened at."""
    secret_key: str = DEVELOPMENT_SECRET
    """Signs sessions and CSRF tokens. Outside development and test: 32+ random bytes."""
    data_dir: str = "var"
    """Where the SQLite file, cached models and other local state live."""
    database_url: str = ""
    """``sqlite:///path`` or ``postgresql://user@host:port/db``; empty: SQLite in data_dir."""
    database_password: str = ""
    """PostgreSQL password, merged into ``database_url`` (so the URL holds no secret; usually
    from a file: ``SWITCHBOARD_DATABASE_PASSWORD_FILE``). Empty: the URL's own, if any."""
    database_pool_size: int = 10

    # --- model tier -------------------------------------------------------------------------
    upstream_urls: str = "http://127.0.0.1:8001/v1"
    """Comma-separated OpenAI-compatible base URLs (vLLM servers); models are discovered."""
    upstream_api_key: str = ""
    """Bearer token the model servers expect (vLLM --api-key); empty for none."""
    default_model: str = "smollm2-135m-instruct"
    model_server_port: int = 8001
    """Port of the embedded vLLM CPU server that ``make run`` starts."""
    model_max_len: int = 2048
    model_kv_cache_gb: int = 1
    upstream_connect_timeout: float = 5.0
    """Seconds to connect to a model server (and to send the request)."""
    upstream_connect_retries: int = 2
    """Rounds of connects tried again (after 0.25 s, then 0.5 s, ...) when no model server
    took a request (refused, or answered 503): safe, since none ran it; 0 answers 503 at once."""
    upstream_first_byte_timeout: float = 600.0
    """Seconds until a stream's first event (a queued request starts late under load). A JSON
    answer comes whole, so only the total bounds it."""
    upstream_total_timeout: float = 600.0
    """Seconds for a whole answer, as the OpenAI SDK's own default: a longer generation is cut
    (504, or an error event in a stream) and its request closed, so vLLM aborts it."""
    upstream_health_interval: float = 5.0
    """Seconds between health probes of the model servers (an ejected server is re-probed)."""

    max_tokens_cap: int = 0
    """Upper bound on every request's max_tokens; also set on requests that name none.
    0: the model's context length (as the model server reports it)."""

    # --- gateway controls -------------------------------------------------------------------
    default_rpm: int = 60
    """Requests per minute of a new user's keys (each key can override)."""
    default_tpm: int = 100_000
    """Tokens per minute of a new user's keys (prompt + completion)."""
    cache_max_entries: int = 1024
    cache_max_bytes: int = 64 * 1024 * 1024
    cache_ttl: float = 600.0
    """Seconds a deterministic answer stays cached."""
    cache_scope: Literal["user", "global"] = "user"
    """``user``: each person's answers are cached for them only; ``global``: shared by all
    (only where every user may see every other user's prompts)."""
    redis_url: str = ""
    """Redis for what every worker and replica shares: limits, budgets, the sign-in throttle,
    sessions, and the response cache unless ``cache_redis_url`` is set. Empty: in process."""
    cache_redis_url: str = ""
    """A Redis of its own for the response cache (empty: ``redis_url``'s). Production gives
    the cache one that evicts (allkeys-lru), so answers never push out the shared state."""
    redis_timeout: float = 0.5
    """Seconds a Redis call may take before it counts as failed (a cache miss, not a hang)."""
    usage_flush_interval: float = 1.0
    usage_batch_size: int = 500
    usage_buffer_max: int = 100_000
    """Usage rows held in memory while the database is unreachable; beyond, the oldest are
    dropped (counted in switchboard_usage_dropped_total)."""
    shutdown_grace: float = 30.0
    """Seconds a stopping gateway lets streams in flight finish before it closes them."""
    usage_retention_days: int = 90
    """Usage rows older than this are pruned (in small batches, hourly); 0 keeps everything."""
    responses_retention_days: int = 30
    """Stored responses (the Responses API's ``store``) older than this are forgotten, as
    OpenAI keeps them 30 days; 0 keeps them until their owner deletes them."""
    budget_currency: str = "USD"
    """The currency of model prices and money budgets (shown on the pages and in errors)."""
    budget_refresh_seconds: float = 15.0
    """Seconds between reloads of prices and budgets by each worker (the worker where an admin
    changes them reloads at once)."""

    # --- HTTP -------------------------------------------------------------------------------
    max_body_bytes: int = 1_048_576
    trusted_proxies: str = ""
    """Comma-separated addresses or networks (CIDR) of reverse proxies whose
    ``X-Forwarded-For``/``-Proto`` are believed; empty: none (the peer is the client)."""

    # --- accounts and keys ------------------------------------------------------------------
    password_min_length: int = 12
    session_days: int = 14
    """Days a sign-in lasts without activity."""
    max_keys_per_user: int = 20
    """Active API keys one person may hold (limits are per person too: keys add no quota)."""
    key_cache_seconds: float = 1.0
    """Seconds a verified API key is remembered by a worker: a revoked key or a disabled user
    stops working on every worker within this time."""

    # --- workspace --------------------------------------------------------------------------
    max_follower_streams: int = 4
    """Streams one person may hold open at once on answers another request is writing (a page
    reloaded, another tab): each waits for the answer to end. One more shows a notice."""
    imports_per_hour: int = 20
    """Conversation imports one person may start per hour (each can write 50,000 messages)."""
    chat_titles: bool = True
    """After a conversation's first answer, ask the model for a short title (one small request,
    counted in the person's usage like the chat's own). Off: the first message names it."""

    # --- observability ----------------------------------------------------------------------
    metrics_token: str = ""
    """Bearer token Prometheus sends to /metrics (it also shows /readyz's checks); required in
    production. Empty: /metrics and the checks are for loopback clients only."""
    business_metrics_interval: float = 60.0
    """Seconds between the database aggregates behind the business gauges."""

    # --- logging ----------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_prompts: bool = False
    """Log prompt text (debugging only; off by default)."""

    def __post_init__(self) -> None:
        _check(self)

    @property
    def resolved_database_url(self) -> str:
        url = self.database_url or f"sqlite:///{Path(self.data_dir) / 'switchboard.sqlite3'}"
        return with_password(url, self.database_password) if self.database_password else url

    @property
    def upstream_url_list(self) -> list[str]:
        return [url.strip().rstrip("/") for url in self.upstream_urls.split(",") if url.strip()]

    @property
    def secure_cookies(self) -> bool:
        """Cookies marked Secure when the public URL is HTTPS."""
        return self.public_url.startswith("https://")

    @property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(
            ipaddress.ip_network(part.strip(), strict=False)
            for part in self.trusted_proxies.split(",")
            if part.strip()
        )

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"


def _check(settings: Settings) -> None:
    def fail(field: str, why: str) -> None:
        raise SettingsError(f"{PREFIX}{field.upper()}: {why}")

    if not 0 < settings.port < 65536:
        fail("port", f"{settings.port} is not a TCP port")
    if not 0 < settings.model_server_port < 65536:
        fail("model_server_port", f"{settings.model_server_port} is not a TCP port")
    secret = settings.secret_key
    if settings.environment not in ("development", "test") and (
        len(secret.encode()) < MIN_SECRET_BYTES or secret.lower() in EXAMPLE_SECRETS
    ):
        fail("secret_key", f"outside development and test it must be a random value of at "
             f"least {MIN_SECRET_BYTES} bytes, not an example; make one with "
             "`openssl rand -hex 32`")  # fmt: skip
    if settings.environment == "production" and not settings.metrics_token:
        fail("metrics_token", "production needs the bearer token Prometheus sends to /metrics "
             "(and that shows /readyz's checks); make one with `openssl rand -hex 32`")  # fmt: skip
    url = settings.database_url or "sqlite:///"
    if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        fail("database_url", f"{url!r} must start with sqlite:/// or postgresql://")
    if settings.database_password:
        if url.startswith("sqlite:///"):
            fail("database_password", "is for PostgreSQL; SQLite has no password")
        if urlsplit(url).password is not None:
            fail("database_password", "the database URL has a password already: drop one")
    for name in ("redis_url", "cache_redis_url"):
        url = getattr(settings, name)
        if url and not url.startswith(("redis://", "rediss://", "unix://")):
            fail(name, f"{url!r} must start with redis:// or rediss://")
    for name in ("max_tokens_cap", "cache_max_entries", "cache_max_bytes", "usage_retention_days",
                 "responses_retention_days", "shutdown_grace"):  # fmt: skip
        if getattr(settings, name) < 0:
            fail(name, "must not be negative")
    if not settings.upstream_url_list:
        fail("upstream_urls", "at least one model server URL is needed")
    for upstream in settings.upstream_url_list:
        if not upstream.startswith(("http://", "https://")):
            fail("upstream_urls", f"{upstream!r} is not an http(s) URL")
    positive = ("max_body_bytes", "database_pool_size", "model_max_len", "workers",
                "default_rpm", "default_tpm", "usage_batch_size", "usage_buffer_max",
                "password_min_length", "session_days", "max_keys_per_user",
                "max_follower_streams", "imports_per_hour")  # fmt: skip
    for name in positive:
        if getattr(settings, name) <= 0:
            fail(name, "must be positive")
    seconds = ("upstream_connect_timeout", "upstream_first_byte_timeout", "upstream_total_timeout",
               "upstream_health_interval", "usage_flush_interval", "cache_ttl",
               "business_metrics_interval", "redis_timeout", "key_cache_seconds",
               "budget_refresh_seconds")  # fmt: skip
    for name in seconds:
        if getattr(settings, name) <= 0:
            fail(name, "must be a positive number of seconds")
    if not 0 <= settings.upstream_connect_retries <= 10:
        fail("upstream_connect_retries", "must be between 0 and 10")
    if settings.workers > 1 and not settings.redis_url:
        fail("workers", f"{settings.workers} workers need SWITCHBOARD_REDIS_URL: rate limits, "
             "the sign-in throttle and revocations must be shared by every worker")  # fmt: skip
    if settings.environment == "production" and not settings.secure_cookies:
        fail("public_url", "production needs the https:// address people use (cookies are "
             "Secure and __Host- prefixed only behind HTTPS)")  # fmt: skip
    try:
        settings.trusted_proxy_networks  # noqa: B018 - parsed here to fail at start
    except ValueError as exc:
        fail("trusted_proxies", str(exc))


def with_password(url: str, password: str) -> str:
    """``postgresql://user@host/db`` with ``password`` (percent-encoded) after the user."""
    parts = urlsplit(url)
    userinfo, _, host = parts.netloc.rpartition("@")
    netloc = f"{userinfo or 'postgres'}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def read_secret_file(variable: str, path: str) -> str:
    """The value a ``*_FILE`` variable points at: the file's content without surrounding
    whitespace (a trailing newline is what editors and ``echo`` leave)."""
    try:
        value = Path(path).read_text().strip()
    except OSError as exc:
        raise SettingsError(f"{variable}={path!r}: cannot read it ({exc.strerror})") from None
    if not value:
        raise SettingsError(f"{variable}={path!r}: the file is empty")
    return value


def read_dotenv(path: Path) -> dict[str, str]:
    """The ``KEY=value`` pairs of a ``.env`` file (python-dotenv's parser: comments, quotes,
    ``export``, escapes); none if there is no such file."""
    if not path.is_file():
        return {}
    return {key: value for key, value in dotenv_values(path).items() if value is not None}


def load_settings(environ: Mapping[str, str] | None = None, dotenv: Path | None = None) -> Settings:
    """Build settings from the environment; values in the real environment beat ``.env``.
    ``SWITCHBOARD_X_FILE`` names a file holding the value of ``SWITCHBOARD_X`` (compose and
    Kubernetes secrets); setting both is an error."""
    env = dict(read_dotenv(dotenv or Path(".env")))
    env.update(os.environ if environ is None else environ)
    fields = {f.name: f for f in msgspec.structs.fields(Settings)}
    raw: dict[str, Any] = {}
    from_files: dict[str, str] = {}
    for key, value in env.items():
        if not key.startswith(PREFIX):
            continue
        name = key[len(PREFIX) :].lower()
        if key.endswith(FILE_SUFFIX) and name.removesuffix("_file") in fields:
            from_files[name.removesuffix("_file")] = read_secret_file(key, value)
            continue
        if name not in fields:
            raise SettingsError(f"{key}: unknown setting (see .env.example for the list)")
        raw[name] = value
    for name, value in from_files.items():
        if name in raw:
            variable = f"{PREFIX}{name.upper()}"
            raise SettingsError(f"{variable} and {variable}{FILE_SUFFIX} are both set: keep one")
        raw[name] = value
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(_name_variable(str(exc), raw)) from None


def _name_variable(message: str, raw: Mapping[str, Any]) -> str:
    """Turn msgspec's ``... - at `$.port``` into a message that names SWITCHBOARD_PORT."""
    text, _, where = message.partition(" - at `$.")
    if not where:
        return message
    name = where.rstrip("`")
    return f"{PREFIX}{name.upper()}={raw.get(name)!r}: {text}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return load_settings()

"""Gateway metrics (prometheus-client), one module so every name is in one place.

Labels stay bounded: routes are templates (``/v1/models/{model_id:path}``, ``unmatched``), models
are only those a model server serves, statuses are codes. With several worker processes set
``PROMETHEUS_MULTIPROC_DIR`` (``switchboard serve`` does) and ``/metrics`` aggregates them;
the gauges computed from shared state are ``SnapshotGauge``s, served by the worker scraped.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from switchboard import __version__
from switchboard.observability.snapshots import SnapshotGauge

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

HTTP_REQUESTS = Counter(
    "switchboard_http_requests",
    "HTTP requests by method, route template and status",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "switchboard_http_request_duration_seconds",
    "Time to the end of the response body",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
UPSTREAM_LATENCY = Histogram(
    "switchboard_upstream_latency_seconds",
    "Model server call time (whole answer)",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
TIME_TO_FIRST_TOKEN = Histogram(
    "switchboard_time_to_first_token_seconds",
    "Request start to first generated text",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
TOKENS = Counter("switchboard_tokens", "Tokens by model and kind", ["model", "kind"])
CACHE_REQUESTS = Counter("switchboard_cache_requests", "Cache lookups by result", ["result"])
CACHE_ERRORS = Counter(
    "switchboard_cache_errors", "Cache backend failures (each one served as a miss)", ["operation"]
)
USAGE_DROPPED = Counter(
    "switchboard_usage_dropped", "Usage rows dropped because the buffer was full (database down)"
)
USAGE_CLAMPED = Counter(
    "switchboard_usage_clamped",
    "Usage rows whose values were made storable (text cleaned or cut, counts clamped)",
)
USAGE_REJECTED = Counter(
    "switchboard_usage_rejected",
    "Usage rows the database refused, set aside and logged with their request id",
)
SHARED_STATE_ERRORS = Counter(
    "switchboard_shared_state_errors",
    "Failed calls to the shared store (Redis) by feature; the request went on without it",
    ["feature"],
)
PROMPT_COUNTS = Counter(
    "switchboard_prompt_counts",
    "Prompts counted before a budget reservation, by method: the model server's tokenizer, or "
    "the byte bound when no server could count",
    ["method"],
)
RATE_LIMITED = Counter("switchboard_rate_limited", "Requests refused by a limit", ["limit"])
BUDGET_USED = SnapshotGauge(
    "switchboard_budget_used_ratio",
    "Share of a monthly budget spent (1 = all of it), per holder (kind user|key, id) and "
    "resource (tokens|money); only holders with a budget",
    ["kind", "id", "resource"],
)
ACTIVE_STREAMS = Gauge(
    "switchboard_active_streams", "Streams being relayed now", multiprocess_mode="livesum"
)
UPSTREAM_ERRORS = Counter("switchboard_upstream_errors", "Model server failures by kind", ["kind"])
DB_QUERY_DURATION = Histogram(
    "switchboard_db_query_duration_seconds",
    "Database time by operation",
    ["operation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
BUILD_INFO = Gauge(
    "switchboard_build_info", "Build information", ["version"], multiprocess_mode="max"
)
LOG_MESSAGES = Counter("switchboard_log_messages", "Log lines by level", ["level"])

# Business gauges: computed periodically from the database (see business.py).
ACTIVE_USERS = SnapshotGauge(
    "switchboard_active_users", "Users with a request in the window", ["window"]
)
TOKENS_TODAY = SnapshotGauge("switchboard_tokens_today", "Tokens used since 00:00 UTC")
ACTIVE_KEYS = SnapshotGauge("switchboard_active_keys", "Keys neither revoked nor expired")
TOP_USER_TOKENS = SnapshotGauge(
    "switchboard_top_user_tokens", "Tokens today of the top users (top 10)", ["rank", "user"]
)
TOP_KEY_TOKENS = SnapshotGauge(
    "switchboard_top_key_tokens", "Tokens today of the top API keys (top 10)", ["rank", "key"]
)
CONVERSATIONS_CREATED = Counter("switchboard_conversations_created", "Conversations started")
MESSAGES_CREATED = Counter("switchboard_messages_created", "Chat messages stored", ["role"])
REQUESTS_TODAY = SnapshotGauge("switchboard_requests_today", "Completion requests since 00:00 UTC")
SNAPSHOTS = (
    BUDGET_USED, ACTIVE_USERS, TOKENS_TODAY, ACTIVE_KEYS, TOP_USER_TOKENS, TOP_KEY_TOKENS,
    REQUESTS_TODAY,
)  # fmt: skip
for _snapshot in SNAPSHOTS:
    REGISTRY.register(_snapshot)

BUILD_INFO.labels(version=__version__).set(1)
# Known label values start at zero, so rates and increases exist before the first event.
for _result in ("hit", "miss"):
    CACHE_REQUESTS.labels(_result)
for _operation in ("get", "put"):
    CACHE_ERRORS.labels(_operation)
for _limit in ("requests", "tokens"):
    RATE_LIMITED.labels(_limit)
for _kind in ("connect", "unavailable", "timeout", "status", "stream"):
    UPSTREAM_ERRORS.labels(_kind)
for _role in ("user", "assistant"):
    MESSAGES_CREATED.labels(_role)


@functools.lru_cache(maxsize=8192)
def labelled(metric: Any, *values: str) -> Any:
    """``metric.labels(*values)``, looked up once: the request path observes the same children
    again and again (labels are bounded, so is the cache)."""
    return metric.labels(*values)


def exposition(workers: int) -> tuple[bytes, str]:
    """The metrics text, aggregated over the worker processes when there are several (their
    values are in the files ``switchboard serve`` points prometheus-client at)."""
    if workers > 1:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        for snapshot in SNAPSHOTS:
            registry.register(snapshot)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class timed:
    """``with timed("usage_insert"):`` observes the database time of a block."""

    def __init__(self, operation: str) -> None:
        self.operation = operation
        self.started = 0.0

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *_: Any) -> None:
        DB_QUERY_DURATION.labels(self.operation).observe(time.perf_counter() - self.started)

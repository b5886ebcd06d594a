"""Grafana dashboards as code: `python grafana/generate_dashboards.py [OUT_DIR]` writes
grafana/dashboards/*.json (or OUT_DIR/*.json).

Stdlib only, deterministic output (sorted keys), so the committed JSON can be compared with a
fresh run (tests/unit/test_dashboards.py, tests/unit/test_observability_configs.py). Every panel
and target queries through the dashboard's `datasource` template variable (type datasource:
Prometheus, or Loki for the logs dashboard); units are set per panel (s, reqps, percentunit,
short, bytes, Bps). tests/integration/test_dashboards_live.py evaluates every PromQL expression
here against a live Prometheus. Metric names: docs/observability.md.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

OUT = Path(__file__).resolve().parent / "dashboards"
PROM = {"type": "prometheus", "uid": "${datasource}"}
LOKI = {"type": "loki", "uid": "${datasource}"}


@dataclass
class Panel:
    title: str
    exprs: list[tuple[str, str]]  # (expr, legend)
    unit: str = "short"
    kind: str = "timeseries"
    width: int = 12
    description: str = ""
    source: str = "prometheus"  # which exporter feeds it: gateway, vllm, node, cadvisor, loki ...
    height: int = 8


@dataclass
class Dashboard:
    uid: str
    title: str
    panels: list[Panel] = field(default_factory=list)
    datasource: str = "prometheus"
    variables: list[dict[str, object]] = field(default_factory=list)


# Panel options by kind: a stat or bar gauge shows the last value of an instant query.
REDUCE_LAST = {"calcs": ["lastNotNull"], "fields": "", "values": False}
OPTIONS: dict[str, dict[str, object]] = {
    "timeseries": {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    },
    "stat": {"reduceOptions": REDUCE_LAST, "colorMode": "value", "graphMode": "area"},
    "bargauge": {"reduceOptions": REDUCE_LAST, "orientation": "horizontal", "showUnfilled": True},
    "logs": {
        "showTime": True,
        "wrapLogMessage": True,
        "sortOrder": "Descending",
        "enableLogDetails": True,
        "dedupStrategy": "none",
    },
}


def _panel(
    panel: Panel, index: int, x: int, y: int, datasource: dict[str, str]
) -> dict[str, object]:
    targets = []
    for ref, (expr, legend) in enumerate(panel.exprs):
        target: dict[str, object] = {
            "refId": chr(ord("A") + ref),
            "expr": expr,
            "datasource": datasource,
        }
        if legend:
            target["legendFormat"] = legend
        if panel.kind in ("stat", "bargauge") and datasource is PROM:
            target["instant"] = True
            target["range"] = False
        targets.append(target)
    return {
        "id": index,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": datasource,
        "gridPos": {"x": x, "y": y, "w": panel.width, "h": panel.height},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": OPTIONS.get(panel.kind, {}),
        "targets": targets,
    }


def render(dashboard: Dashboard) -> dict[str, object]:
    datasource = LOKI if dashboard.datasource == "loki" else PROM
    panels, x, y, row_height = [], 0, 0, 0
    for index, panel in enumerate(dashboard.panels, start=1):
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        panels.append(_panel(panel, index, x, y, datasource))
        x += panel.width
        row_height = max(row_height, panel.height)
    variables: list[dict[str, object]] = [
        {
            "name": "datasource",
            "type": "datasource",
            "query": dashboard.datasource,
            "label": "Data source",
            "current": {},
            "hide": 0,
        },
        *dashboard.variables,
    ]
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "tags": ["switchboard"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": variables},
        "panels": panels,
    }


def quantiles(
    metric: str, by: str = "", qs: tuple[float, ...] = (0.5, 0.95), where: str = ""
) -> list[tuple[str, str]]:
    """p50/p95 (...) of a histogram over $__rate_interval, one target each."""
    group = f"le, {by}" if by else "le"
    legend_by = " ".join(f"{{{{{label.strip()}}}}}" for label in by.split(",")) if by else ""
    return [
        (
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{where}[$__rate_interval])))",
            f"p{round(q * 100)} {legend_by}".strip(),
        )
        for q in qs
    ]


GATEWAY = Dashboard(
    "switchboard-gateway",
    "Switchboard · Gateway",
    [
        Panel(
            "Requests per second by route",
            [
                (
                    "sum by (route) (rate(switchboard_http_requests_total[$__rate_interval]))",
                    "{{route}}",
                )
            ],
            "reqps",
            description="RED rate: every HTTP request by route template.",
            source="gateway",
        ),
        Panel(
            "Errors per second by route and status",
            [
                (
                    'sum by (route, status) (rate(switchboard_http_requests_total{status=~"4..|5.."}[$__rate_interval]))',
                    "{{route}} {{status}}",
                )
            ],
            "reqps",
            description="RED errors: 4xx (clients, limits) and 5xx (gateway or model server).",
            source="gateway",
        ),
        Panel(
            "5xx ratio by route",
            [
                (
                    'sum by (route) (rate(switchboard_http_requests_total{status=~"5.."}[$__rate_interval])) / clamp_min(sum by (route) (rate(switchboard_http_requests_total[$__rate_interval])), 1e-9)',
                    "{{route}}",
                )
            ],
            "percentunit",
            description="Share of server errors; alert GatewayHighErrorRatio fires above 5% overall.",
            source="gateway",
        ),
        Panel(
            "Request duration p50 / p95 by route",
            quantiles("switchboard_http_request_duration_seconds", "route"),
            "s",
            description="RED duration, until the response body ended (streams included).",
            source="gateway",
        ),
        Panel(
            "Upstream latency p50 / p95 by model",
            quantiles("switchboard_upstream_latency_seconds", "model"),
            "s",
            description="Whole model server call of successful answers.",
            source="gateway",
        ),
        Panel(
            "Time to first token p50 / p95",
            quantiles("switchboard_time_to_first_token_seconds"),
            "s",
            description="Request start to the first generated text; alert TTFTHigh above 3 s p95.",
            source="gateway",
        ),
        Panel(
            "Cache hit ratio",
            [
                (
                    'sum(rate(switchboard_cache_requests_total{result="hit"}[$__rate_interval])) / clamp_min(sum(rate(switchboard_cache_requests_total[$__rate_interval])), 1e-9)',
                    "hit ratio",
                )
            ],
            "percentunit",
            description="Hits among cache lookups of deterministic requests.",
            source="gateway",
        ),
        Panel(
            "Rate-limited requests",
            [
                (
                    "sum by (limit) (rate(switchboard_rate_limited_total[$__rate_interval]))",
                    "{{limit}}",
                )
            ],
            "reqps",
            description="Requests refused with 429, by the limit that refused them.",
            source="gateway",
        ),
        Panel(
            "Active streams",
            [("sum(switchboard_active_streams)", "streams")],
            "short",
            description="SSE streams being relayed now.",
            source="gateway",
        ),
        Panel(
            "Tokens per second by model",
            [
                (
                    "sum by (model, kind) (rate(switchboard_tokens_total[$__rate_interval]))",
                    "{{model}} {{kind}}",
                )
            ],
            "short",
            description="Prompt and completion tokens accounted by the gateway.",
            source="gateway",
        ),
        Panel(
            "Upstream errors by kind",
            [("sum by (kind) (increase(switchboard_upstream_errors_total[$__range]))", "{{kind}}")],
            "short",
            kind="stat",
            description="Model server failures over the dashboard's time range: connect, timeout, status, stream.",
            source="gateway",
        ),
        Panel(
            "Database query p95",
            quantiles("switchboard_db_query_duration_seconds", "operation", (0.95,)),
            "s",
            description="Database time by operation.",
            source="gateway",
        ),
        Panel(
            "Build",
            [("max by (version) (switchboard_build_info)", "{{version}}")],
            "short",
            kind="stat",
            description="Version of the running gateway.",
            source="gateway",
        ),
    ],
)

MODEL = Dashboard(
    "switchboard-model",
    "Switchboard · Model server (vLLM)",
    [
        Panel(
            "Running and waiting requests",
            [
                ("sum by (model_name) (vllm:num_requests_running)", "running {{model_name}}"),
                ("sum by (model_name) (vllm:num_requests_waiting)", "waiting {{model_name}}"),
            ],
            "short",
            description="Waiting requests queue for a batch slot; alert VLLMQueueHigh above 10.",
            source="vllm",
        ),
        Panel(
            "Time to first token p50 / p95",
            quantiles("vllm:time_to_first_token_seconds"),
            "s",
            description="Measured by vLLM (queue and prefill), without the gateway.",
            source="vllm",
        ),
        Panel(
            "Inter-token latency p50 / p95",
            quantiles("vllm:inter_token_latency_seconds"),
            "s",
            description="Time between two generated tokens of a request (decode speed).",
            source="vllm",
        ),
        Panel(
            "End-to-end latency p50 / p95",
            quantiles("vllm:e2e_request_latency_seconds"),
            "s",
            description="Whole request inside vLLM.",
            source="vllm",
        ),
        Panel(
            "Queue time p50 / p95",
            quantiles("vllm:request_queue_time_seconds"),
            "s",
            description="Time a request waited before it was scheduled.",
            source="vllm",
        ),
        Panel(
            "Generation and prompt tokens per second",
            [
                ("sum(rate(vllm:generation_tokens_total[$__rate_interval]))", "generation"),
                ("sum(rate(vllm:prompt_tokens_total[$__rate_interval]))", "prompt"),
            ],
            "short",
            description="Throughput of the model server.",
            source="vllm",
        ),
        Panel(
            "KV-cache usage",
            [("max by (model_name) (vllm:kv_cache_usage_perc)", "{{model_name}}")],
            "percentunit",
            description="Share of KV-cache blocks in use; alert KVCacheAlmostFull above 90%.",
            source="vllm",
        ),
        Panel(
            "Preemptions",
            [("sum(increase(vllm:num_preemptions_total[$__range]))", "preemptions")],
            "short",
            kind="stat",
            description="Requests evicted and recomputed over the time range; alert PreemptionsRising.",
            source="vllm",
        ),
        Panel(
            "Prefix cache hit rate",
            [
                (
                    "sum(rate(vllm:prefix_cache_hits_total[$__rate_interval])) / clamp_min(sum(rate(vllm:prefix_cache_queries_total[$__rate_interval])), 1e-9)",
                    "hit rate",
                )
            ],
            "percentunit",
            description="Prompt tokens found in the prefix cache among those looked up.",
            source="vllm",
        ),
        Panel(
            "Successful requests per second",
            [
                (
                    "sum by (finished_reason) (rate(vllm:request_success_total[$__rate_interval]))",
                    "{{finished_reason}}",
                )
            ],
            "reqps",
            description="Finished requests by reason (stop, length, abort).",
            source="vllm",
        ),
    ],
)

SYSTEM = Dashboard(
    "switchboard-system",
    "Switchboard · System",
    [
        Panel(
            "CPU used per host",
            [
                (
                    '1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[$__rate_interval]))',
                    "{{instance}}",
                )
            ],
            "percentunit",
            description="node-exporter: share of CPU time not idle.",
            source="node",
        ),
        Panel(
            "Memory used per host",
            [("1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes", "{{instance}}")],
            "percentunit",
            description="Alert MemoryHigh above 90%.",
            source="node",
        ),
        Panel(
            "Disk used per filesystem",
            [
                (
                    '1 - node_filesystem_avail_bytes{fstype!~"tmpfs|overlay|squashfs|ramfs"} / node_filesystem_size_bytes{fstype!~"tmpfs|overlay|squashfs|ramfs"}',
                    "{{instance}} {{mountpoint}}",
                )
            ],
            "percentunit",
            description="Alert DiskAlmostFull above 85%.",
            source="node",
        ),
        Panel(
            "Network per host",
            [
                (
                    'sum by (instance) (rate(node_network_receive_bytes_total{device!="lo"}[$__rate_interval]))',
                    "in {{instance}}",
                ),
                (
                    'sum by (instance) (rate(node_network_transmit_bytes_total{device!="lo"}[$__rate_interval]))',
                    "out {{instance}}",
                ),
            ],
            "Bps",
            description="Bytes per second received and sent, loopback excluded.",
            source="node",
        ),
        Panel(
            "CPU per container",
            [
                (
                    'sum by (name) (rate(container_cpu_usage_seconds_total{name!=""}[$__rate_interval]))',
                    "{{name}}",
                )
            ],
            "short",
            description="cAdvisor: CPU cores used by each container.",
            source="cadvisor",
        ),
        Panel(
            "Memory per container",
            [('sum by (name) (container_memory_working_set_bytes{name!=""})', "{{name}}")],
            "bytes",
            description="cAdvisor: working set (what the OOM killer looks at).",
            source="cadvisor",
        ),
        Panel(
            "Network per container",
            [
                (
                    'sum by (name) (rate(container_network_receive_bytes_total{name!=""}[$__rate_interval]))',
                    "in {{name}}",
                ),
                (
                    'sum by (name) (rate(container_network_transmit_bytes_total{name!=""}[$__rate_interval]))',
                    "out {{name}}",
                ),
            ],
            "Bps",
            description="cAdvisor: bytes per second received and sent.",
            source="cadvisor",
        ),
        Panel(
            "PostgreSQL up",
            [("max(pg_up)", "up")],
            "short",
            kind="stat",
            description="postgres-exporter: 1 when it can reach PostgreSQL.",
            source="postgres",
        ),
    ],
)

BUSINESS = Dashboard(
    "switchboard-business",
    "Switchboard · Business",
    [
        Panel(
            "Active users",
            [("max by (window) (switchboard_active_users)", "{{window}}")],
            "short",
            kind="stat",
            description="Users with a request in the last day and the last 7 days.",
            source="gateway",
        ),
        Panel(
            "Active API keys",
            [("max(switchboard_active_keys)", "keys")],
            "short",
            kind="stat",
            description="Keys neither revoked nor expired.",
            source="gateway",
        ),
        Panel(
            "Tokens today",
            [("max(switchboard_tokens_today)", "tokens")],
            "short",
            kind="stat",
            description="Tokens used since 00:00 UTC (from the database).",
            source="gateway",
        ),
        Panel(
            "Requests today",
            [("max(switchboard_requests_today)", "requests")],
            "short",
            kind="stat",
            description="Completion requests since 00:00 UTC (from the database).",
            source="gateway",
        ),
        Panel(
            "Tokens per day",
            [("sum by (kind) (increase(switchboard_tokens_total[1d]))", "{{kind}}")],
            "short",
            description="Prompt and completion tokens over the 24 hours before each point.",
            source="gateway",
        ),
        Panel(
            "Conversations and messages per hour",
            [
                ("sum(increase(switchboard_conversations_created_total[1h]))", "conversations"),
                (
                    "sum by (role) (increase(switchboard_messages_created_total[1h]))",
                    "{{role}} messages",
                ),
            ],
            "short",
            description="Chat usage of the web workspace.",
            source="gateway",
        ),
        Panel(
            "Top users by tokens today",
            [("max by (rank, user) (switchboard_top_user_tokens)", "{{rank}}. {{user}}")],
            "short",
            kind="bargauge",
            description="The 10 users with the most tokens since 00:00 UTC.",
            source="gateway",
        ),
        Panel(
            "Top API keys by tokens today",
            [("max by (rank, key) (switchboard_top_key_tokens)", "{{rank}}. {{key}}")],
            "short",
            kind="bargauge",
            description="The 10 API keys with the most tokens since 00:00 UTC.",
            source="gateway",
        ),
    ],
)

LOG_SELECTOR = '{service=~"$service", level=~"$level"}'

LOGS = Dashboard(
    "switchboard-logs",
    "Switchboard · Logs",
    [
        Panel(
            "Log lines per minute by level",
            [
                (
                    f'sum by (level) (count_over_time({LOG_SELECTOR} |= "$request_id" [1m]))',
                    "{{level}}",
                )
            ],
            "short",
            width=24,
            height=6,
            description="Volume of the lines shown below.",
            source="loki",
        ),
        Panel(
            "Errors per minute by service",
            [
                (
                    'sum by (service) (count_over_time({service=~"$service", level=~"error|critical"}[1m]))',
                    "{{service}}",
                )
            ],
            "short",
            width=24,
            height=6,
            description="Error and critical lines; the gateway's count is also the metric behind ErrorLogSpike.",
            source="loki",
        ),
        Panel(
            "Log lines",
            [(f'{LOG_SELECTOR} |= "$request_id"', "")],
            "short",
            kind="logs",
            width=24,
            height=16,
            description="Filtered by service, level and (when set) request id; request_id, route and logger are structured metadata.",
            source="loki",
        ),
    ],
    datasource="loki",
    variables=[
        {
            "name": "service",
            "label": "Service",
            "type": "query",
            "datasource": LOKI,
            "query": {
                "label": "service",
                "refId": "LokiVariableQueryEditor-VariableQuery",
                "stream": "",
                "type": 1,
            },
            "definition": "label_values(service)",
            "refresh": 2,
            "includeAll": True,
            "allValue": ".+",
            "multi": True,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "sort": 1,
            "hide": 0,
        },
        {
            "name": "level",
            "label": "Level",
            "type": "custom",
            "query": "debug,info,warning,error,critical,unknown",
            "includeAll": True,
            "allValue": ".+",
            "multi": True,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "hide": 0,
        },
        {
            "name": "request_id",
            "label": "Request id",
            "type": "textbox",
            "query": "",
            "current": {"text": "", "value": ""},
            "hide": 0,
        },
    ],
)

DASHBOARDS = {
    "gateway": GATEWAY,
    "model-server": MODEL,
    "system": SYSTEM,
    "business": BUSINESS,
    "logs": LOGS,
}


def main(out: Path = OUT) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, dashboard in DASHBOARDS.items():
        (out / f"{name}.json").write_text(
            json.dumps(render(dashboard), indent=2, sort_keys=True) + "\n"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)

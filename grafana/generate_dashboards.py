"""Grafana dashboards as code: `python grafana/generate_dashboards.py` writes grafana/dashboards/.

Stdlib only. Every panel queries through the `datasource` template variable; units are set per
panel. The test suite evaluates every PromQL expression here against a live Prometheus.
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


@dataclass
class Dashboard:
    uid: str
    title: str
    panels: list[Panel] = field(default_factory=list)
    datasource: str = "prometheus"
    variables: list[dict[str, object]] = field(default_factory=list)


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
        targets.append(target)
    return {
        "id": index,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": datasource,
        "gridPos": {"x": x, "y": y, "w": panel.width, "h": 8},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}}
        if panel.kind == "timeseries"
        else {},
        "targets": targets,
    }


def render(dashboard: Dashboard) -> dict[str, object]:
    datasource = LOKI if dashboard.datasource == "loki" else PROM
    panels, x, y = [], 0, 0
    for index, panel in enumerate(dashboard.panels, start=1):
        if x + panel.width > 24:
            x, y = 0, y + 8
        panels.append(_panel(panel, index, x, y, datasource))
        x += panel.width
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
            source="gateway",
        ),
        Panel(
            "Request duration p50 / p95 by route",
            [
                (
                    "histogram_quantile(0.5, sum by (le, route) (rate(switchboard_http_request_duration_seconds_bucket[$__rate_interval])))",
                    "p50 {{route}}",
                ),
                (
                    "histogram_quantile(0.95, sum by (le, route) (rate(switchboard_http_request_duration_seconds_bucket[$__rate_interval])))",
                    "p95 {{route}}",
                ),
            ],
            "s",
            source="gateway",
        ),
        Panel(
            "Upstream latency p95 by model",
            [
                (
                    "histogram_quantile(0.95, sum by (le, model) (rate(switchboard_upstream_latency_seconds_bucket[$__rate_interval])))",
                    "{{model}}",
                )
            ],
            "s",
            source="gateway",
        ),
        Panel(
            "Time to first token p50 / p95",
            [
                (
                    "histogram_quantile(0.5, sum by (le) (rate(switchboard_time_to_first_token_seconds_bucket[$__rate_interval])))",
                    "p50",
                ),
                (
                    "histogram_quantile(0.95, sum by (le) (rate(switchboard_time_to_first_token_seconds_bucket[$__rate_interval])))",
                    "p95",
                ),
            ],
            "s",
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
            source="gateway",
        ),
        Panel(
            "Active streams",
            [("sum(switchboard_active_streams)", "streams")],
            "short",
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
            source="gateway",
        ),
        Panel(
            "Upstream errors by kind",
            [("sum by (kind) (increase(switchboard_upstream_errors_total[$__range]))", "{{kind}}")],
            "short",
            kind="stat",
            source="gateway",
        ),
        Panel(
            "Database query p95",
            [
                (
                    "histogram_quantile(0.95, sum by (le, operation) (rate(switchboard_db_query_duration_seconds_bucket[$__rate_interval])))",
                    "{{operation}}",
                )
            ],
            "s",
            source="gateway",
        ),
        Panel(
            "Build",
            [("max by (version) (switchboard_build_info)", "{{version}}")],
            "short",
            kind="stat",
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
                ("sum(vllm:num_requests_running)", "running"),
                ("sum(vllm:num_requests_waiting)", "waiting"),
            ],
            "short",
            source="vllm",
        ),
        Panel(
            "Time to first token p50 / p95",
            [
                (
                    "histogram_quantile(0.5, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket[$__rate_interval])))",
                    "p50",
                ),
                (
                    "histogram_quantile(0.95, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket[$__rate_interval])))",
                    "p95",
                ),
            ],
            "s",
            source="vllm",
        ),
        Panel(
            "Inter-token latency p50 / p95",
            [
                (
                    "histogram_quantile(0.5, sum by (le) (rate(vllm:inter_token_latency_seconds_bucket[$__rate_interval])))",
                    "p50",
                ),
                (
                    "histogram_quantile(0.95, sum by (le) (rate(vllm:inter_token_latency_seconds_bucket[$__rate_interval])))",
                    "p95",
                ),
            ],
            "s",
            source="vllm",
        ),
        Panel(
            "End-to-end latency p50 / p95",
            [
                (
                    "histogram_quantile(0.5, sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket[$__rate_interval])))",
                    "p50",
                ),
                (
                    "histogram_quantile(0.95, sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket[$__rate_interval])))",
                    "p95",
                ),
            ],
            "s",
            source="vllm",
        ),
        Panel(
            "Generation and prompt tokens per second",
            [
                ("sum(rate(vllm:generation_tokens_total[$__rate_interval]))", "generation"),
                ("sum(rate(vllm:prompt_tokens_total[$__rate_interval]))", "prompt"),
            ],
            "short",
            source="vllm",
        ),
        Panel(
            "KV-cache usage",
            [("max(vllm:kv_cache_usage_perc)", "KV cache")],
            "percentunit",
            source="vllm",
        ),
        Panel(
            "Preemptions",
            [("sum(increase(vllm:num_preemptions_total[$__range]))", "preemptions")],
            "short",
            kind="stat",
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
            source="node",
        ),
        Panel(
            "Memory used per host",
            [("1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes", "{{instance}}")],
            "percentunit",
            source="node",
        ),
        Panel(
            "Disk used per filesystem",
            [
                (
                    '1 - node_filesystem_avail_bytes{fstype!~"tmpfs|overlay|squashfs"} / node_filesystem_size_bytes{fstype!~"tmpfs|overlay|squashfs"}',
                    "{{instance}} {{mountpoint}}",
                )
            ],
            "percentunit",
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
            source="cadvisor",
        ),
        Panel(
            "Memory per container",
            [('sum by (name) (container_memory_working_set_bytes{name!=""})', "{{name}}")],
            "bytes",
            source="cadvisor",
        ),
        Panel(
            "Network per container",
            [
                (
                    'sum by (name) (rate(container_network_receive_bytes_total{name!=""}[$__rate_interval]))',
                    "{{name}}",
                )
            ],
            "Bps",
            source="cadvisor",
        ),
        Panel("PostgreSQL up", [("max(pg_up)", "up")], "short", kind="stat", source="postgres"),
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
            source="gateway",
        ),
        Panel(
            "Active API keys",
            [("max(switchboard_active_keys)", "keys")],
            "short",
            kind="stat",
            source="gateway",
        ),
        Panel(
            "Tokens today",
            [("max(switchboard_tokens_today)", "tokens")],
            "short",
            kind="stat",
            source="gateway",
        ),
        Panel(
            "Requests today",
            [("max(switchboard_requests_today)", "requests")],
            "short",
            kind="stat",
            source="gateway",
        ),
        Panel(
            "Tokens per day",
            [("sum(increase(switchboard_tokens_total[1d]))", "tokens")],
            "short",
            source="gateway",
        ),
        Panel(
            "Top users by tokens today",
            [("max by (user) (switchboard_top_user_tokens)", "{{user}}")],
            "short",
            kind="bargauge",
            source="gateway",
        ),
        Panel(
            "Top API keys by tokens today",
            [("max by (key) (switchboard_top_key_tokens)", "{{key}}")],
            "short",
            kind="bargauge",
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
            source="gateway",
        ),
    ],
)

LOGS = Dashboard(
    "switchboard-logs",
    "Switchboard · Logs",
    [
        Panel(
            "Log lines",
            [('{service=~"$service", level=~"$level"} |= "$request_id"', "")],
            "short",
            kind="logs",
            width=24,
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
            source="loki",
        ),
    ],
    datasource="loki",
    variables=[
        {
            "name": "service",
            "type": "custom",
            "query": "gateway,model,postgres",
            "includeAll": True,
            "multi": True,
            "current": {},
            "hide": 0,
        },
        {
            "name": "level",
            "type": "custom",
            "query": "debug,info,warning,error,critical",
            "includeAll": True,
            "multi": True,
            "current": {},
            "hide": 0,
        },
        {
            "name": "request_id",
            "type": "textbox",
            "query": "",
            "label": "Request id",
            "current": {},
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

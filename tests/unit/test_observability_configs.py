"""The static observability stack: Prometheus config and rules (checked and unit-tested with
promtool), Alertmanager (rendered from the environment, checked with amtool), Loki, Alloy,
Grafana provisioning and dashboards (generated from code), runbooks and docs.

promtool and amtool come from Debian's prometheus and prometheus-alertmanager packages
(`make system-deps`); a missing tool fails these tests, it does not skip them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT

PROMETHEUS = REPO_ROOT / "infra" / "prometheus"
RULES = PROMETHEUS / "rules" / "switchboard.rules.yml"
RULE_TESTS = PROMETHEUS / "tests" / "switchboard.rules.test.yml"
ALERTMANAGER = REPO_ROOT / "infra" / "alertmanager"
LOKI_CONFIG = REPO_ROOT / "infra" / "loki" / "loki-config.yml"
ALLOY_CONFIG = REPO_ROOT / "infra" / "alloy" / "config.alloy"
GRAFANA = REPO_ROOT / "grafana"
DASHBOARD_DIR = GRAFANA / "dashboards"
DASHBOARD_FILES = sorted(DASHBOARD_DIR.glob("*.json"))
RUNBOOKS = REPO_ROOT / "docs" / "runbooks.md"
OBSERVABILITY_DOC = REPO_ROOT / "docs" / "observability.md"

TOKEN_FILE = "/etc/prometheus/secrets/gateway_metrics_token"
RUNBOOK_BASE = "docs/runbooks.md#"
ALERTS = {
    "GatewayDown",
    "ModelServerDown",
    "GatewayHighErrorRatio",
    "GatewayLatencyHigh",
    "TTFTHigh",
    "VLLMQueueHigh",
    "KVCacheAlmostFull",
    "PreemptionsRising",
    "DiskAlmostFull",
    "MemoryHigh",
    "ErrorLogSpike",
    "UsageRowsDropped",
    "UsageRowsRejected",
    "ResponseCacheFailing",
    "SharedStateFailing",
    "BudgetNearlySpent",
}
# Services that may run several replicas: every address of the name is a target (DNS).
SCRAPED_REPLICAS = {
    "gateway": ("gateway", 8000),
    "vllm": ("model", 8000),
    "vllm-router": ("vllm-router", 29000),
}
SCRAPE_TARGETS = {
    "node": ["node-exporter:9100"],
    "cadvisor": ["cadvisor:8080"],
    "postgres": ["postgres-exporter:9187"],
    "redis": ["redis-exporter:9121", "redis-cache-exporter:9121"],
    "alertmanager": ["alertmanager:9093"],
}
EXAMPLE_ENV = {
    "ALERT_WEBHOOK_URL": "http://alert-receiver.example:8080/hook",
    "ALERT_EMAIL_TO": "oncall@example.com",
    "ALERT_EMAIL_FROM": "alerts@example.com",
    "ALERT_SMTP_HOST": "smtp.example.com:587",
}
UNITS = {"s", "reqps", "percentunit", "short", "bytes", "Bps"}
# Every metric of the contract, as documented in docs/observability.md.
METRICS = [
    "switchboard_http_requests_total",
    "switchboard_http_request_duration_seconds",
    "switchboard_upstream_latency_seconds",
    "switchboard_time_to_first_token_seconds",
    "switchboard_tokens_total",
    "switchboard_cache_requests_total",
    "switchboard_rate_limited_total",
    "switchboard_active_streams",
    "switchboard_upstream_errors_total",
    "switchboard_db_query_duration_seconds",
    "switchboard_build_info",
    "switchboard_log_messages_total",
    "switchboard_active_users",
    "switchboard_conversations_created_total",
    "switchboard_messages_created_total",
    "switchboard_tokens_today",
    "switchboard_active_keys",
    "switchboard_top_user_tokens",
    "switchboard_budget_used_ratio",
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:kv_cache_usage_perc",
    "vllm:num_preemptions_total",
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
    "vllm:prefix_cache_hits_total",
    "vllm:prefix_cache_queries_total",
    "vllm:request_success_total",
    "vllm:time_to_first_token_seconds",
    "vllm:inter_token_latency_seconds",
    "vllm:e2e_request_latency_seconds",
    "vllm:request_queue_time_seconds",
]


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"{name} is not installed: `apt-get install prometheus prometheus-alertmanager` "
            "(make system-deps) provides promtool and amtool"
        )
    return found


def run(*command: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout}{result.stderr}"
    return result.stdout + result.stderr


def load_yaml(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def alert_rules() -> list[dict[str, Any]]:
    groups = load_yaml(RULES)["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text()) for path in DASHBOARD_FILES}


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expr) of every PromQL target: panels on a Prometheus data source.

    The expressions are as stored, with Grafana's `$__rate_interval` and `$__range`; replace
    them (e.g. with 1m and 1h) before sending them to Prometheus.
    """
    queries: list[tuple[str, str, str]] = []
    for name, dashboard in dashboards().items():
        for panel in dashboard["panels"]:
            if panel["datasource"]["type"] != "prometheus":
                continue
            queries.extend((name, panel["title"], target["expr"]) for target in panel["targets"])
    return queries


# --- Prometheus ---------------------------------------------------------------------------


@pytest.fixture
def prometheus_dir(tmp_path: Path) -> Path:
    """infra/prometheus copied, with the scrape token file in place as it is when deployed.

    promtool checks that credentials_file exists; the config names its deployed path
    (/etc/prometheus/secrets/...), so the copy points it at a token file inside the copy.
    Rule files are relative to the config file and resolve inside the copy.
    """
    copy = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS, copy)
    token = copy / "secrets" / "gateway_metrics_token"
    token.write_text("test-token\n")
    config = (copy / "prometheus.yml").read_text()
    setting = f"credentials_file: {TOKEN_FILE}"
    assert config.count(setting) == 1
    (copy / "prometheus.yml").write_text(config.replace(setting, f"credentials_file: {token}"))
    return copy


def test_every_redis_and_postgres_of_the_compose_file_has_an_exporter_prometheus_scrapes() -> None:
    """A store without an exporter is one nobody sees filling up or going down."""
    services = load_yaml(REPO_ROOT / "docker-compose.prod.yml")["services"]
    stores = {
        name
        for name, service in services.items()
        if str(service.get("image", "")).startswith(("redis:", "postgres:"))
    }
    assert stores >= {"postgres", "redis", "redis-cache"}
    watched: dict[str, str] = {}
    for name, service in services.items():
        environment = service.get("environment", {})
        address = environment.get("REDIS_ADDR") or environment.get("DATA_SOURCE_URI") or ""
        match = re.match(r"^(?:redis://)?([a-z-]+):\d+", address)
        if match:
            watched[match.group(1)] = name
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    scraped = {
        target.split(":")[0]
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    for store in sorted(stores):
        assert store in watched, f"{store} has no exporter"
        assert watched[store] in scraped, f"{watched[store]} ({store}'s exporter) is not scraped"


def test_prometheus_config_is_valid(prometheus_dir: Path) -> None:
    out = run(tool("promtool"), "check", "config", "prometheus.yml", cwd=prometheus_dir)
    assert "SUCCESS: prometheus.yml is valid prometheus config file syntax" in out
    assert "SUCCESS" in out.split("rules/switchboard.rules.yml", 1)[1], out


def test_prometheus_scrapes_every_part_of_both_tiers() -> None:
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    assert config["global"]["scrape_interval"] == "15s"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for name, targets in SCRAPE_TARGETS.items():
        assert jobs[name]["static_configs"][0]["targets"] == targets, name
    for name, (service, port) in SCRAPED_REPLICAS.items():
        assert "static_configs" not in jobs[name], name
        found = jobs[name]["dns_sd_configs"]
        assert found == [
            {"names": [service], "type": "A", "port": port, "refresh_interval": "15s"}
        ], name
    gateway = jobs["gateway"]
    assert gateway["metrics_path"] == "/metrics"
    assert gateway["authorization"] == {"type": "Bearer", "credentials_file": TOKEN_FILE}
    assert config["rule_files"] == ["rules/*.rules.yml"]
    alertmanagers = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanagers == ["alertmanager:9093"]


def test_rules_are_valid(prometheus_dir: Path) -> None:
    out = run(tool("promtool"), "check", "rules", "rules/switchboard.rules.yml", cwd=prometheus_dir)
    assert "SUCCESS" in out


def test_every_alert_fires_when_it_should_and_stays_silent_otherwise(
    prometheus_dir: Path,
) -> None:
    out = run(
        tool("promtool"), "test", "rules", "tests/switchboard.rules.test.yml", cwd=prometheus_dir
    )
    assert "SUCCESS" in out
    checks = [c for test in load_yaml(RULE_TESTS)["tests"] for c in test["alert_rule_test"]]
    fired = {check["alertname"] for check in checks if check["exp_alerts"]}
    silent = {check["alertname"] for check in checks if not check["exp_alerts"]}
    assert fired == ALERTS, f"no positive case for {ALERTS - fired}"
    assert silent == ALERTS, f"no negative case for {ALERTS - silent}"


def test_the_alerts_are_the_agreed_ones() -> None:
    names = [rule["alert"] for rule in alert_rules()]
    assert sorted(names) == sorted(ALERTS)


def test_every_alert_has_severity_summary_description_and_a_runbook_section() -> None:
    headings = {
        github_anchor(line.lstrip("#"))
        for line in RUNBOOKS.read_text().splitlines()
        if re.match(r"#{1,6} ", line)
    }
    for rule in alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert rule["labels"]["component"] in {"gateway", "model", "host"}, name
        annotations = rule["annotations"]
        assert annotations["summary"].strip(), name
        assert annotations["description"].strip(), name
        url = annotations["runbook_url"]
        assert url == RUNBOOK_BASE + name.lower(), name
        assert name.lower() in headings, f"docs/runbooks.md needs a '## {name}' section"


# --- Alertmanager -------------------------------------------------------------------------


def test_alertmanager_example_is_the_template_rendered_and_valid(tmp_path: Path) -> None:
    rendered = tmp_path / "alertmanager.yml"
    run("sh", str(ALERTMANAGER / "render.sh"), str(rendered), cwd=tmp_path, env=EXAMPLE_ENV)
    example = ALERTMANAGER / "alertmanager.example.yml"
    assert rendered.read_text() == example.read_text(), (
        "alertmanager.example.yml is stale: render it again with the example values"
    )
    assert "${" not in re.sub(r"(?m)^\s*#.*$", "", rendered.read_text())
    out = run(tool("amtool"), "check-config", str(example), cwd=tmp_path)
    assert "SUCCESS" in out
    assert "2 receivers" in out


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["severity=critical", "alertname=GatewayDown"], "email,webhook"),
        (["severity=warning", "alertname=MemoryHigh"], "webhook"),
        (["alertname=Unlabelled"], "webhook"),
    ],
)
def test_alertmanager_routes_by_severity(labels: list[str], receivers: str) -> None:
    out = run(
        tool("amtool"),
        "config",
        "routes",
        "test",
        "--config.file",
        str(ALERTMANAGER / "alertmanager.example.yml"),
        f"--verify.receivers={receivers}",
        *labels,
        cwd=ALERTMANAGER,
    )
    assert receivers in out.splitlines()


def test_render_refuses_missing_values_and_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "alertmanager.yml"
    env = {"PATH": os.environ["PATH"], "ALERT_EMAIL_TO": "oncall@example.com"}
    result = subprocess.run(
        ["sh", str(ALERTMANAGER / "render.sh"), str(target)],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert result.returncode != 0
    assert "ALERT_WEBHOOK_URL is not set" in result.stderr
    assert "ALERT_EMAIL_TO" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_render_keeps_values_intact_in_yaml(tmp_path: Path) -> None:
    password = 'p"a\\s&|/s${X}'
    env = {
        **EXAMPLE_ENV,
        "ALERT_SMTP_PASSWORD": password,
        "ALERT_WEBHOOK_URL": "http://hook.example/a?b=1&c=2",
    }
    out = run("sh", str(ALERTMANAGER / "render.sh"), "-", cwd=tmp_path, env=env)
    config = yaml.safe_load(out)
    assert config["global"]["smtp_auth_password"] == password
    assert config["global"]["smtp_auth_username"] == ""  # optional, default empty
    assert config["receivers"][0]["webhook_configs"][0]["url"] == env["ALERT_WEBHOOK_URL"]


# --- Loki and Alloy (no binaries here: structure only) -------------------------------------


def test_loki_is_single_binary_on_the_filesystem_with_retention() -> None:
    config = load_yaml(LOKI_CONFIG)
    assert config["target"] == "all"
    assert config["auth_enabled"] is False
    assert config["server"]["http_listen_port"] == 3100
    assert "filesystem" in config["common"]["storage"]
    schema = config["schema_config"]["configs"][0]
    assert (schema["store"], schema["object_store"], schema["schema"]) == (
        "tsdb",
        "filesystem",
        "v13",
    )
    assert config["limits_config"]["retention_period"] == "336h"
    assert config["limits_config"]["allow_structured_metadata"] is True
    assert config["compactor"]["retention_enabled"] is True


def test_alloy_ships_docker_logs_with_service_level_and_request_id() -> None:
    text = ALLOY_CONFIG.read_text()
    code = re.sub(r'"(?:\\.|[^"\\])*"', '""', re.sub(r"(?m)^\s*//.*$", "", text))
    assert code.count("{") == code.count("}"), "unbalanced braces in config.alloy"
    for needle in [
        'discovery.docker "containers"',
        'loki.source.docker "containers"',
        "__meta_docker_container_label_com_docker_compose_service",
        'target_label  = "service"',
        "stage.json",
        "stage.labels",
        "level = ",
        "stage.structured_metadata",
        'request_id = ""',
        'url = "http://loki:3100/loki/api/v1/push"',
    ]:
        assert needle in text, needle


# --- Grafana ------------------------------------------------------------------------------


def test_grafana_provisioning() -> None:
    sources = load_yaml(GRAFANA / "provisioning" / "datasources" / "datasources.yml")
    by_uid = {source["uid"]: source for source in sources["datasources"]}
    assert {uid: s["type"] for uid, s in by_uid.items()} == {
        "prometheus": "prometheus",
        "loki": "loki",
        "alertmanager": "alertmanager",
    }
    assert by_uid["prometheus"]["url"] == "http://prometheus:9090"
    assert by_uid["loki"]["url"] == "http://loki:3100"
    providers = load_yaml(GRAFANA / "provisioning" / "dashboards" / "dashboards.yml")
    [provider] = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_the_generated_dashboards_are_up_to_date(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(GRAFANA / "generate_dashboards.py"), str(tmp_path)],
        check=True,
        timeout=60,
    )
    generated = sorted(p.name for p in tmp_path.glob("*.json"))
    assert generated == [p.name for p in DASHBOARD_FILES]
    assert generated == [
        "business.json",
        "gateway.json",
        "logs.json",
        "model-server.json",
        "system.json",
    ]
    for name in generated:
        assert (tmp_path / name).read_text() == (DASHBOARD_DIR / name).read_text(), (
            f"grafana/dashboards/{name} is stale: run python grafana/generate_dashboards.py"
        )


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.stem)
def test_dashboard_is_well_formed(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    kind = "loki" if path.stem == "logs" else "prometheus"
    assert dashboard["schemaVersion"] == 39
    assert dashboard["uid"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == kind
    expected = {"type": kind, "uid": "${datasource}"}
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {path.name}"
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        title = panel["title"]
        assert panel["datasource"] == expected, title
        assert panel["fieldConfig"]["defaults"]["unit"] in UNITS, title
        grid = panel["gridPos"]
        assert grid["x"] >= 0, title
        assert grid["x"] + grid["w"] <= 24, title
        assert grid["h"] > 0, title
        panel_cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & panel_cells, f"{title} overlaps another panel"
        cells |= panel_cells
        assert panel["targets"], title
        for target in panel["targets"]:
            assert target["datasource"] == expected, title
            assert target["expr"].strip(), title
    if kind == "loki":
        assert variables["request_id"]["type"] == "textbox"
        assert {"service", "level"} <= set(variables)
        exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
        assert any("$request_id" in e and "$service" in e and "$level" in e for e in exprs)


def test_dashboard_queries_lists_every_promql_panel_and_no_logql() -> None:
    queries = dashboard_queries()
    assert {dashboard for dashboard, _, _ in queries} == {
        "gateway",
        "model-server",
        "system",
        "business",
    }
    promql_panels = sum(len(d["panels"]) for name, d in dashboards().items() if name != "logs")
    assert len({(d, title) for d, title, _ in queries}) == promql_panels


def test_every_promql_query_parses(tmp_path: Path) -> None:
    """promtool parses each panel query as a recording rule (Grafana's variables filled in)."""
    rules = [
        {
            "record": f"panel:{index}",
            "expr": expr.replace("$__rate_interval", "1m").replace("$__range", "1h"),
        }
        for index, (_, _, expr) in enumerate(dashboard_queries())
    ]
    path = tmp_path / "panels.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    out = run(tool("promtool"), "check", "rules", str(path), cwd=tmp_path)
    assert f"SUCCESS: {len(rules)} rules found" in out


# --- Docs ---------------------------------------------------------------------------------


def test_observability_doc_covers_metrics_dashboards_panels_and_alerts() -> None:
    doc = OBSERVABILITY_DOC.read_text()
    missing = [m for m in METRICS if f"`{m}`" not in doc and f"`{m}{{" not in doc]
    assert not missing, f"docs/observability.md does not describe {missing}"
    for name, dashboard in dashboards().items():
        assert f"grafana/dashboards/{name}.json" in doc, name
        for panel in dashboard["panels"]:
            assert panel["title"] in doc, f"{name}: panel {panel['title']!r} is not documented"
    for alert in ALERTS:
        assert f"| {alert} |" in doc or f"[{alert}]" in doc, alert

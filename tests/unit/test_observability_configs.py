"""Prometheus, alert rules and Alertmanager configs: valid, unit-tested, documented."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT

PROMETHEUS = REPO_ROOT / "infra" / "prometheus"
ALERTMANAGER = REPO_ROOT / "infra" / "alertmanager"
RUNBOOKS = REPO_ROOT / "docs" / "troubleshooting.md"
EXAMPLE_ENV = {
    "ALERT_WEBHOOK_URL": "http://alert-receiver.example:8080/hook",
    "ALERT_EMAIL_TO": "oncall@example.com",
    "ALERT_EMAIL_FROM": "alerts@example.com",
    "ALERT_SMTP_HOST": "smtp.example.com:587",
}


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: make system-deps installs prometheus and alertmanager")
    return found


def run(*command: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=120,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


@pytest.fixture
def prometheus_dir(tmp_path: Path) -> Path:
    """A copy of infra/prometheus with the scrape token file in place (as deployed)."""
    copy = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS, copy)
    (copy / "secrets" / "gateway_metrics_token").write_text("token\n")
    return copy


def test_prometheus_config_and_rules_are_valid(prometheus_dir: Path) -> None:
    promtool = tool("promtool")
    assert "SUCCESS" in run(promtool, "check", "config", "prometheus.yml", cwd=prometheus_dir)
    out = run(promtool, "check", "rules", "rules/switchboard.rules.yml", cwd=prometheus_dir)
    assert "SUCCESS: 15 rules found" in out


def test_every_alert_fires_when_it_should_and_only_then(prometheus_dir: Path) -> None:
    out = run(
        tool("promtool"), "test", "rules", "tests/switchboard.rules.test.yml", cwd=prometheus_dir
    )
    assert "SUCCESS" in out
    tests = yaml.safe_load((PROMETHEUS / "tests" / "switchboard.rules.test.yml").read_text())
    checks = [check for test in tests["tests"] for check in test["alert_rule_test"]]
    fired = {c["alertname"] for c in checks if c["exp_alerts"]}
    silent = {c["alertname"] for c in checks if not c["exp_alerts"]}
    assert fired == silent == set(alert_names())


def alert_names() -> list[str]:
    rules = yaml.safe_load((PROMETHEUS / "rules" / "switchboard.rules.yml").read_text())
    return [r["alert"] for group in rules["groups"] for r in group["rules"] if "alert" in r]


def test_every_alert_is_described_and_has_a_runbook_section() -> None:
    rules = yaml.safe_load((PROMETHEUS / "rules" / "switchboard.rules.yml").read_text())
    headings = {
        re.sub(r"[^a-z0-9-]", "", line.lstrip("#").strip().lower().replace(" ", "-"))
        for line in RUNBOOKS.read_text().splitlines()
        if line.startswith("#")
    }
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            assert rule["labels"]["severity"] in {"critical", "warning"}
            annotations = rule["annotations"]
            assert annotations["summary"]
            assert annotations["description"]
            anchor = annotations["runbook_url"].rsplit("#", 1)[1]
            assert anchor == rule["alert"].lower()
            assert anchor in headings, (
                f"docs/troubleshooting.md needs a '## {rule['alert']}' section"
            )


def test_prometheus_scrapes_every_part() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert {"gateway", "vllm", "node", "cadvisor", "postgres", "redis", "alertmanager"} <= jobs


def test_alertmanager_renders_from_the_environment_and_is_valid(tmp_path: Path) -> None:
    rendered = run("sh", str(ALERTMANAGER / "render.sh"), cwd=tmp_path, env=EXAMPLE_ENV)
    assert rendered == (ALERTMANAGER / "alertmanager.example.yml").read_text()
    assert "${" not in rendered
    target = tmp_path / "alertmanager.yml"
    target.write_text(rendered)
    out = run(tool("amtool"), "check-config", str(target), cwd=tmp_path)
    assert "2 receivers" in out
    missing = subprocess.run(["sh", str(ALERTMANAGER / "render.sh")], capture_output=True,
                             text=True, env={"PATH": os.environ["PATH"]})  # fmt: skip
    assert missing.returncode != 0
    assert "ALERT_WEBHOOK_URL is not set" in missing.stderr

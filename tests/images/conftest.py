"""The production stack from docker-compose.prod.yml on the images `make test-images` built.

The CPU model tier (profile cpu) serves SmolLM2-135M; PostgreSQL, Redis and Caddy are the
stand-in images built from Debian packages (tests/images/standins). The observability services
are left out: their images come from registries this machine cannot reach."""

from __future__ import annotations

import os
import ssl
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ARTIFACTS, REPO_ROOT
from tests.images.compose_stack import ComposeStack, engine_or_fail
from tests.support.compose import EDGE_SUBNETS
from tests.support.live import free_port
from tests.support.waiting import wait_for

SERVICES = ["proxy", "gateway", "model-cpu"]  # and their dependencies: migrate, postgres, redis*
STARTUP = 900.0
"""Seconds the stack may take to become healthy: vLLM loads and warms up on 2 busy cores."""


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeStack]:
    docker_host = os.environ.get("DOCKER_HOST", "unix:///run/podman/podman.sock")
    engine_or_fail(docker_host, "make test-images")
    secrets = tmp_path_factory.mktemp("secrets")
    subprocess.run(
        ["bash", str(REPO_ROOT / "deploy/make-secrets.sh"), str(secrets)],
        check=True,
        capture_output=True,
    )
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "DOCKER_HOST": docker_host,
        # what deploy/compose.env.example leaves to each deployment
        "COMPOSE_PROFILES": "cpu",
        "SWITCHBOARD_IMAGE_OWNER": os.environ.get("IMAGE_OWNER", "local"),
        "SWITCHBOARD_TAG": os.environ.get("IMAGE_TAG", "test"),
        "SWITCHBOARD_DOMAIN": "localhost",
        "SWITCHBOARD_PUBLIC_URL": f"https://localhost:{port}",
        "SWITCHBOARD_HTTPS_BIND": f"127.0.0.1:{port}",
        "SWITCHBOARD_HTTP_BIND": f"127.0.0.1:{free_port()}",
        "SWITCHBOARD_EDGE_SUBNET": EDGE_SUBNETS["switchboard-images"],
        "SWITCHBOARD_SECRETS_DIR": str(secrets),
        "SWITCHBOARD_DEFAULT_MODEL": "smollm2-135m-instruct",
        "MODEL_CPU_CPUS": str(os.cpu_count() or 2),
    }
    composed = ComposeStack("switchboard-images", env, SERVICES, url=env["SWITCHBOARD_PUBLIC_URL"])
    composed.remove_leftovers()
    try:
        composed.up()
        composed.wait_health("model-cpu", "healthy", STARTUP)
        composed.wait_health("gateway", "healthy", STARTUP)
        yield composed
    finally:
        composed.save_logs(ARTIFACTS / "images" / "containers")
        composed.down()


@pytest.fixture(scope="session")
def proxy_ca(stack: ComposeStack) -> ssl.SSLContext:
    """Trusts the root certificate of Caddy's local CA (it signs the one for localhost)."""
    wait_for(
        lambda: (
            "BEGIN CERTIFICATE"
            in stack.exec("proxy", "cat", "/data/caddy/pki/authorities/local/root.crt", check=False)
        ),
        "Caddy created its local CA",
        timeout=120,
        every=2.0,
    )
    root = stack.exec("proxy", "cat", "/data/caddy/pki/authorities/local/root.crt")
    return ssl.create_default_context(cadata=root)


@pytest.fixture(scope="session")
def https(stack: ComposeStack, proxy_ca: ssl.SSLContext) -> Iterator[httpx.Client]:
    """A client of the proxy's published HTTPS port, verifying Caddy's certificate."""
    with httpx.Client(base_url=stack.url, verify=proxy_ca, timeout=180) as client:
        yield client

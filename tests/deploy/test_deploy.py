"""The deploy script (deploy/deploy.sh) for real: a local registry stands in for GHCR, podman for
the dev host. Tag N is pushed and deployed (its smoke test passes); a broken N+1 is pushed and
deployed: its smoke test fails, the script rolls back to N, and the system answers again.

Run by ``make test-deploy`` (REGISTRY and DOCKER_HOST come from .ci/test-deploy.sh)."""

from __future__ import annotations

import os
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import ARTIFACTS, REPO_ROOT
from tests.images.compose_stack import ComposeStack, engine_or_fail
from tests.support.compose import COMPOSE, EDGE_SUBNETS
from tests.support.live import free_port

PROJECT = "switchboard-deploy"
OWNER = "switchboard"
GOOD, BROKEN = "n1", "n2"
FIRST_SMOKE_TIMEOUT = 900
"""Seconds the first deployment may take to answer: it starts vLLM on 2 busy cores (about 3
minutes here). Within the test's timeout, so that the script's own report says what hung."""
SMOKE_TIMEOUT = 240
"""Seconds a later one may take (only the gateway restarts); the broken tag's gateway exits at
once, and the script gives up on it without waiting this long."""


def podman(*args: str) -> str:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"podman {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def push(registry: str, image: str, tag: str, source: str) -> None:
    target = f"{registry}/{OWNER}/switchboard-{image}:{tag}"
    podman("tag", source, target)
    podman("push", "--quiet", target)  # TLS, trusted through /etc/containers/certs.d
    podman("rmi", target)  # the deployment must pull it from the registry


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The registry, holding tag N (the images `make test-images` built) and a broken N+1 (a
    gateway that exits at once; the same model server)."""
    engine_or_fail(os.environ.get("DOCKER_HOST", ""), "make test-deploy")
    address = os.environ.get("REGISTRY") or pytest.fail(
        "make test-deploy starts the registry and sets REGISTRY (.ci/test-deploy.sh)", pytrace=False
    )
    gateway, model = (
        "ghcr.io/local/switchboard-gateway:test",
        "ghcr.io/local/switchboard-model-cpu:test",
    )
    for tag in (GOOD, BROKEN):
        push(address, "model-cpu", tag, model)
    push(address, "gateway", GOOD, gateway)
    context = tmp_path_factory.mktemp("broken")
    (context / "Dockerfile").write_text(
        f'FROM {gateway}\nCMD ["sh", "-c", "echo broken >&2; exit 3"]\n'
    )
    podman("build", "--quiet", "-t", "localhost/broken-gateway:latest", str(context))
    push(address, "gateway", BROKEN, "localhost/broken-gateway:latest")
    return address


@dataclass(frozen=True)
class Host:
    """The dev host's deployment folder and the stack deployed from it."""

    env_file: Path
    state: Path
    stack: ComposeStack
    env: dict[str, str]
    url: str


@pytest.fixture(scope="module")
def host(registry: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    """The dev host's deployment folder: the compose environment, secrets, state."""
    work = tmp_path_factory.mktemp("host")
    secrets = work / "secrets"
    subprocess.run(
        ["bash", str(REPO_ROOT / "deploy/make-secrets.sh"), str(secrets)],
        check=True,
        capture_output=True,
    )
    port = free_port()
    settings = {
        "COMPOSE_PROFILES": "cpu",
        "SWITCHBOARD_REGISTRY": registry,
        "SWITCHBOARD_IMAGE_OWNER": OWNER,
        "SWITCHBOARD_TAG": GOOD,
        "SWITCHBOARD_DOMAIN": "localhost",
        "SWITCHBOARD_PUBLIC_URL": f"https://localhost:{port}",
        "SWITCHBOARD_HTTPS_BIND": f"127.0.0.1:{port}",
        "SWITCHBOARD_HTTP_BIND": f"127.0.0.1:{free_port()}",
        "SWITCHBOARD_EDGE_SUBNET": EDGE_SUBNETS[PROJECT],
        "SWITCHBOARD_SECRETS_DIR": str(secrets),
        "SWITCHBOARD_DEFAULT_MODEL": "smollm2-135m-instruct",
        "MODEL_CPU_CPUS": str(os.cpu_count() or 2),
    }
    example = (REPO_ROOT / "deploy/compose.env.example").read_text().splitlines()
    kept = [line for line in example if line.split("=", 1)[0] not in settings]
    env_file = work / "compose.env"
    env_file.write_text("\n".join([*kept, *(f"{k}={v}" for k, v in settings.items())]) + "\n")
    env = {
        "PATH": os.environ["PATH"],
        "DOCKER_HOST": os.environ["DOCKER_HOST"],
        **{k: v for k, v in settings.items() if k == "COMPOSE_PROFILES"},
    }
    stack = ComposeStack(PROJECT, {**env, **settings}, [], url=settings["SWITCHBOARD_PUBLIC_URL"])
    stack.remove_leftovers()
    stack.start_health_checks()  # podman's health checks, which compose's depends_on waits for
    try:
        yield Host(
            env_file=env_file,
            state=work / "state",
            stack=stack,
            env=env,
            url=settings["SWITCHBOARD_PUBLIC_URL"],
        )
    finally:
        stack.save_logs(ARTIFACTS / "deploy" / "containers")
        stack.down()


def deploy(host: Host, tag: str, timeout: int = SMOKE_TIMEOUT) -> subprocess.CompletedProcess[str]:
    env = {
        **host.env,
        "ENV_FILE": str(host.env_file),
        "STATE_DIR": str(host.state),
        "COMPOSE": f"{COMPOSE} -p {PROJECT}",
        "SMOKE_CA_FROM_PROXY": "1",
        "SMOKE_TIMEOUT": str(timeout),
        # the observability services' images come from registries this machine cannot reach
        "DEPLOY_SERVICES": "proxy gateway model-cpu",
    }
    lines: list[str] = []
    with subprocess.Popen(
        ["bash", str(REPO_ROOT / "deploy/deploy.sh"), tag],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as script:
        assert script.stdout is not None
        for line in script.stdout:
            print(line, end="")  # pytest shows it when the test fails or times out
            lines.append(line)
    output = "".join(lines)
    (ARTIFACTS / "deploy").mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "deploy" / f"deploy-{tag}.log").write_text(output)
    return subprocess.CompletedProcess(script.args, script.returncode, output, "")


def answers(host: Host) -> bool:
    """/readyz through the proxy, trusting Caddy's local CA."""
    root = host.stack.exec("proxy", "cat", "/data/caddy/pki/authorities/local/root.crt")
    with httpx.Client(verify=ssl.create_default_context(cadata=root), timeout=60) as client:
        return client.get(f"{host.url}/readyz").status_code == 200


def running_tag(host: Host) -> str:
    image = host.stack.inspect("gateway")["Config"]
    assert isinstance(image, dict)
    return str(image["Image"]).rsplit(":", 1)[1]


@pytest.mark.timeout(FIRST_SMOKE_TIMEOUT + 3 * SMOKE_TIMEOUT + 900)  # pushes and pulls 4.5 GB too
def test_a_good_tag_deploys_and_a_broken_one_rolls_back(host: Host) -> None:
    first = deploy(host, GOOD, FIRST_SMOKE_TIMEOUT)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "a real completion came back" in first.stdout
    assert (host.state / "current-tag").read_text().strip() == GOOD
    assert running_tag(host) == GOOD

    second = deploy(host, BROKEN)
    assert second.returncode == 1, second.stdout + second.stderr  # failed, rolled back
    assert f"rolling back to {GOOD}" in second.stdout
    # its gateway exits at once: given up on that, with its last lines, not after the window
    assert "smoke: the gateway keeps exiting" in second.stdout, second.stdout
    assert "broken" in second.stdout
    assert f"rolled back: {GOOD} is live again" in second.stdout
    assert (host.state / "current-tag").read_text().strip() == GOOD
    assert running_tag(host) == GOOD
    assert answers(host)

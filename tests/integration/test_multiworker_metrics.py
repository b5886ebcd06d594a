"""Several granian worker processes: /metrics counts the requests of all of them, each once."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from tests.support.gateway_process import gateway_process
from tests.support.waiting import wait_for

DEADLINE = 120.0
"""Seconds the server may take to start (or a condition to hold) on a busy machine."""
WORKERS = 2
REQUESTS = 40


def healthz_in_exposition(text: str) -> float:
    """/healthz requests in /metrics' text (0 when none was counted yet)."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("switchboard_http_requests_total{") and 'route="/healthz"' in line
    )


def healthz_per_process(directory: Path, scratch: Path) -> dict[int, float]:
    """/healthz requests each process counted: prometheus-client's own reader, run on each
    process's counter file alone (the /metrics view sums all of them)."""
    counted: dict[int, float] = {}
    for path in sorted(directory.glob("counter_*.db")):
        alone = scratch / path.stem
        alone.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, alone / path.name)
        registry = CollectorRegistry()
        # prometheus_client's MultiProcessCollector.__init__ has no annotations
        MultiProcessCollector(registry, path=str(alone))  # type: ignore[no-untyped-call]
        value = sum(
            sample.value
            for family in registry.collect()
            for sample in family.samples
            if sample.name == "switchboard_http_requests_total"
            and sample.labels.get("route") == "/healthz"
        )
        shutil.rmtree(alone)
        if value:
            counted[int(path.stem.removeprefix("counter_"))] = value
    return counted


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(child) for child in (task / "children").read_text().split()}
    return found


@pytest.fixture
def server(tmp_path: Path, redis_url: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    # readiness is polled on /metrics, so no /healthz request is counted before the test's
    with gateway_process(
        tmp_path / "data",
        ready_path="/metrics",
        workers=WORKERS,
        redis_url=redis_url,
        upstream_urls="http://127.0.0.1:9/v1",
    ) as started:
        yield started


def test_metrics_add_up_across_worker_processes(
    server: tuple[subprocess.Popen[bytes], str], tmp_path: Path
) -> None:
    process, url = server
    directory = tmp_path / "data" / "prometheus-multiproc"
    with httpx.Client(base_url=url, timeout=DEADLINE) as http:

        def metrics_answer() -> bool:
            try:
                return http.get("/metrics").status_code == 200
            except httpx.TransportError:
                assert process.poll() is None, "the server exited"
                return False

        # readiness is polled on /metrics, so no /healthz request is counted before these
        wait_for(metrics_answer, "/metrics answers", DEADLINE)
        assert healthz_in_exposition(http.get("/metrics").text) == 0

        sent = 0

        def send_healthz() -> None:
            nonlocal sent
            # a new connection each time, so the requests spread over the workers
            assert http.get("/healthz", headers={"Connection": "close"}).status_code == 200
            sent += 1

        for _ in range(REQUESTS):
            send_healthz()

        def every_worker_answered_some() -> bool:
            if len(healthz_per_process(directory, tmp_path / "scratch")) == WORKERS:
                return True
            send_healthz()
            return False

        wait_for(every_worker_answered_some, "every worker answered a /healthz", DEADLINE)
        # A worker counts a request once its response is sent: wait until all are counted,
        # then the figure must be exactly what was sent (fewer: lost, more: counted twice).
        wait_for(
            lambda: healthz_in_exposition(http.get("/metrics").text) >= sent,
            "every /healthz counted",
            DEADLINE,
        )
        reported = healthz_in_exposition(http.get("/metrics").text)
        per_process = healthz_per_process(directory, tmp_path / "scratch")

    assert reported == sent
    assert sum(per_process.values()) == reported
    assert len(per_process) == WORKERS
    assert set(per_process) <= children(process.pid)  # the counts come from granian's workers

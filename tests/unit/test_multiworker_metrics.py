"""Several granian worker processes: /metrics counts the requests of all of them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.live import free_port


def test_metrics_add_up_across_worker_processes(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SWITCHBOARD", "PROMETHEUS"))},
        "SWITCHBOARD_PORT": str(port), "SWITCHBOARD_WORKERS": "2",
        "SWITCHBOARD_DATA_DIR": str(tmp_path), "SWITCHBOARD_LOG_LEVEL": "WARNING",
        "SWITCHBOARD_UPSTREAM_URLS": "http://127.0.0.1:9/v1",
    }  # fmt: skip
    server = subprocess.Popen([sys.executable, "-m", "switchboard.cli", "serve"], env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        time.sleep(1)  # both workers up
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(40):  # new connections spread over the workers
                assert http.get("/healthz", headers={"Connection": "close"}).status_code == 200
            text = http.get("/metrics").text
        healthz = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("switchboard_http_requests_total{") and 'route="/healthz"' in line
        )
        assert healthz >= 40  # the 40 above, answered by both processes, counted once each
        assert len(list((tmp_path / "prometheus-multiproc").glob("counter_*.db"))) >= 2
    finally:
        server.terminate()
        server.wait(timeout=30)

"""Real Prometheus and node-exporter processes (Debian's packages) on free loopback ports."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.live import free_port
from tests.support.waiting import responds, wait_for


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed (make system-deps installs it)")
    return found


def _wait(url: str, process: subprocess.Popen[bytes]) -> None:
    wait_for(lambda: responds(url, timeout=2), f"{url} ready", every=0.2, process=process)


class NodeExporter:
    def __init__(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [_binary("prometheus-node-exporter"), f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait(f"http://127.0.0.1:{self.port}/metrics", self.process)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


class PrometheusServer:
    """Scrapes the given targets every second and loads the given rule files; optionally sends
    a bearer token (a file) to some jobs and alerts to an Alertmanager."""

    def __init__(
        self,
        base: Path,
        targets: dict[str, str],
        rule_files: list[Path],
        *,
        bearer_files: dict[str, Path] | None = None,
        alertmanager: str | None = None,
    ) -> None:
        self.port = free_port()
        base.mkdir(parents=True, exist_ok=True)
        scrape: list[dict[str, Any]] = []
        for job, target in targets.items():
            scrape.append({"job_name": job, "static_configs": [{"targets": [target]}]})
            if job in (bearer_files or {}):
                token = str((bearer_files or {})[job])
                scrape[-1]["authorization"] = {"type": "Bearer", "credentials_file": token}
        config: dict[str, Any] = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(path) for path in rule_files],
            "scrape_configs": scrape,
        }
        if alertmanager:
            config["alerting"] = {
                "alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]
            }
        (base / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = (base / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                _binary("prometheus"),
                f"--config.file={base / 'prometheus.yml'}",
                f"--storage.tsdb.path={base / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        try:
            _wait(f"{self.url}/-/ready", self.process)
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, expr: str) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=30)
        body: dict[str, Any] = response.json()
        return body

    def targets_up(self) -> dict[str, bool]:
        active = httpx.get(f"{self.url}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
        return {t["labels"]["job"]: t["health"] == "up" for t in active}

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)
        self.log.close()

"""`make run-prod-local`: the production topology as native processes on loopback, for machines
without a container engine, built from the pieces the test suite starts (PostgreSQL, Redis,
the vLLM CPU server, Prometheus, node-exporter) plus Alertmanager, Caddy in front (TLS with its
local CA) and the gateway under granian with 2 workers in production mode.

    python -m tests.support.prod_local [--check]   (--check: exit 0 once everything is healthy)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from switchboard.devstack.model_server import ModelServer
from switchboard.settings import load_settings
from tests.support.live import free_port
from tests.support.postgres import PostgresServer
from tests.support.prometheus_server import NodeExporter, PrometheusServer
from tests.support.redis_server import RedisServer
from tests.support.waiting import responds, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL = "smollm2-135m-instruct"
HTTPS_PORT = int(os.environ.get("PROD_LOCAL_HTTPS_PORT", "8443"))


def say(message: str) -> None:
    print(f"run-prod-local: {message}", flush=True)


def wait_http(url: str, what: str, timeout: float, **options: Any) -> None:
    wait_for(lambda: responds(url, **options), f"{what} ready ({url})", timeout, every=1)


def started(
    command: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def alertmanager_config(base: Path) -> Path:
    """infra/alertmanager's template rendered (by its render.sh) for loopback receivers."""
    output = base / "alertmanager.yml"
    env = {
        **os.environ,
        "ALERT_WEBHOOK_URL": "http://127.0.0.1:9/alerts",
        "ALERT_EMAIL_TO": "oncall@localhost",
        "ALERT_EMAIL_FROM": "alertmanager@localhost",
        "ALERT_SMTP_HOST": "127.0.0.1:25",
    }
    subprocess.run(
        ["sh", str(REPO_ROOT / "infra/alertmanager/render.sh"), str(output)], env=env, check=True
    )
    return output


def caddyfile(base: Path, gateway_port: int) -> Path:
    path = base / "Caddyfile"
    path.write_text(
        "{\n\tadmin off\n\tskip_install_trust\n\tauto_https disable_redirects\n"
        f"\tstorage file_system {{\n\t\troot {base / 'caddy'}\n\t}}\n}}\n"
        f"https://localhost:{HTTPS_PORT} {{\n\treverse_proxy 127.0.0.1:{gateway_port} {{\n"
        "\t\tflush_interval -1\n\t}\n}\n"
    )
    return path


def run(check: bool) -> int:
    base = Path(tempfile.mkdtemp(prefix="switchboard-prod-local-"))
    logs = REPO_ROOT / "var" / "log" / "prod-local"
    logs.mkdir(parents=True, exist_ok=True)
    stack = contextlib.ExitStack()
    try:
        say(f"state in {base}, logs in {logs}")
        # its own folder: postgres (the user) cannot enter base, which is private to us
        postgres_base = Path(tempfile.mkdtemp(prefix="switchboard-prod-local-pg-"))
        stack.callback(shutil.rmtree, postgres_base, ignore_errors=True)
        postgres = PostgresServer(postgres_base).start()
        stack.callback(postgres.stop)
        redis = RedisServer()
        stack.callback(redis.stop)
        say(f"PostgreSQL {postgres.url}, Redis {redis.url}")

        model_settings = load_settings(
            {"SWITCHBOARD_DATA_DIR": str(REPO_ROOT / "var")}, dotenv=Path("/none")
        )
        model = ModelServer(model_settings, port=free_port(), log_path=logs / "model-server.log")
        model.install()
        model.start()
        stack.callback(model.stop)

        token = base / "metrics_token"
        token.write_text(secrets.token_hex(32))
        gateway_port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")},
            "SWITCHBOARD_ENVIRONMENT": "production",
            "SWITCHBOARD_HOST": "127.0.0.1",
            "SWITCHBOARD_PORT": str(gateway_port),
            "SWITCHBOARD_WORKERS": "2",
            "SWITCHBOARD_PUBLIC_URL": f"https://localhost:{HTTPS_PORT}",
            "SWITCHBOARD_TRUSTED_PROXIES": "127.0.0.1",
            "SWITCHBOARD_SECRET_KEY": secrets.token_hex(32),
            "SWITCHBOARD_METRICS_TOKEN_FILE": str(token),
            "SWITCHBOARD_DATA_DIR": str(base / "gateway"),
            "SWITCHBOARD_DATABASE_URL": postgres.url,
            "SWITCHBOARD_REDIS_URL": redis.url,
            "SWITCHBOARD_UPSTREAM_URLS": f"{model.url}/v1",
            "SWITCHBOARD_DEFAULT_MODEL": MODEL,
        }
        (base / "gateway").mkdir()
        say("waiting for vLLM on the CPU (a minute or two)")
        model.wait_ready(timeout=900)
        switchboard = str(Path(sys.executable).parent / "switchboard")
        gateway = started([switchboard, "serve"], logs / "gateway.log", env)
        stack.callback(stop, gateway)
        wait_http(f"http://127.0.0.1:{gateway_port}/readyz", "the gateway", 300)

        caddy = started(
            [
                shutil.which("caddy") or "caddy",
                "run",
                "--adapter",
                "caddyfile",
                "--config",
                str(caddyfile(base, gateway_port)),
            ],
            logs / "caddy.log",
            {**os.environ, "HOME": str(base)},
        )
        stack.callback(stop, caddy)
        wait_http(f"https://localhost:{HTTPS_PORT}/readyz", "Caddy", 120, verify=False)

        alertmanager_port = free_port()
        alertmanager = started(
            [
                shutil.which("prometheus-alertmanager") or "prometheus-alertmanager",
                f"--config.file={alertmanager_config(base)}",
                f"--storage.path={base / 'am'}",
                f"--web.listen-address=127.0.0.1:{alertmanager_port}",
                "--cluster.listen-address=",
            ],
            logs / "alertmanager.log",
        )
        stack.callback(stop, alertmanager)
        wait_http(f"http://127.0.0.1:{alertmanager_port}/-/ready", "Alertmanager", 60)
        node = NodeExporter()
        stack.callback(node.stop)
        prometheus = PrometheusServer(
            base / "prometheus",
            {
                "gateway": f"127.0.0.1:{gateway_port}",
                "vllm": f"127.0.0.1:{model.port}",
                "node": f"127.0.0.1:{node.port}",
            },
            sorted((REPO_ROOT / "infra/prometheus/rules").glob("*.rules.yml")),
            bearer_files={"gateway": token},
            alertmanager=f"127.0.0.1:{alertmanager_port}",
        )
        stack.callback(prometheus.stop)

        def all_up() -> bool:
            return len(up := prometheus.targets_up()) >= 3 and all(up.values())

        wait_for(all_up, lambda: f"Prometheus targets up ({prometheus.targets_up()})", 120, 1)
        up = prometheus.targets_up()

        say(
            f"healthy: https://localhost:{HTTPS_PORT}/ (Caddy's local CA; gateway "
            f"127.0.0.1:{gateway_port}, 2 workers), Prometheus {prometheus.url} (targets up: "
            f"{', '.join(sorted(up))}), Alertmanager 127.0.0.1:{alertmanager_port}"
        )
        say(
            f"first admin: SWITCHBOARD_DATABASE_URL={postgres.url} "
            ".venv/bin/switchboard users create YOUR_NAME --admin"
        )
        if check:
            return 0
        say("Ctrl-C stops everything")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
        return 0
    finally:
        say("stopping")
        stack.close()
        shutil.rmtree(base, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit once everything is healthy")
    args = parser.parse_args()

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)  # stop like Ctrl-C: everything in the ExitStack
    return run(args.check)


if __name__ == "__main__":
    sys.exit(main())

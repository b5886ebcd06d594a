"""Gateway overhead benchmark: wrk against the gateway (granian, N workers) in front of an
instant fake upstream, and against the upstream directly as the baseline.

Run with `make bench`. Writes test-artifacts/bench-gateway.json and prints a table. Traffic only
goes to 127.0.0.1; every run is bounded in time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "test-artifacts" / "bench-gateway.json"
DURATION = os.environ.get("BENCH_DURATION", "10s")
CONNECTIONS = os.environ.get("BENCH_CONNECTIONS", "64")
WORKERS = os.environ.get("BENCH_WORKERS", "1")
BODY = {"model": "bench-model", "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": 8}  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def wrk(url: str, body: dict[str, object], key: str | None) -> dict[str, float]:
    headers = 'wrk.headers["Content-Type"] = "application/json"\n'
    if key:
        headers += f'wrk.headers["Authorization"] = "Bearer {key}"\n'
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(json.dumps(body))}\n{headers}')
    result = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{DURATION}", "--latency", "-s", script.name, url],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    text = result.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)

    def ms(label: str) -> float:
        match = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", text)
        assert match, text
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return {"requests_per_s": rps, "p50_ms": ms("50%"), "p99_ms": ms("99%"),
            "errors": int(non2xx.group(1)) if non2xx else 0}  # fmt: skip


def main() -> int:
    if not shutil.which("wrk"):
        print("bench: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 1
    data = Path(tempfile.mkdtemp(prefix="sb-bench-"))
    upstream_port, gateway_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env.update({
        "SWITCHBOARD_DATA_DIR": str(data), "SWITCHBOARD_PORT": str(gateway_port),
        "SWITCHBOARD_UPSTREAM_URLS": f"http://127.0.0.1:{upstream_port}/v1",
        "SWITCHBOARD_DEFAULT_MODEL": "bench-model", "SWITCHBOARD_WORKERS": WORKERS,
        "SWITCHBOARD_LOG_LEVEL": "WARNING", "SWITCHBOARD_CACHE_MAX_ENTRIES": "0",
    })  # fmt: skip
    python = sys.executable
    key = subprocess.run(
        [python, "-m", "switchboard.cli", "keys", "create", "--user", "bench",
         "--rpm", "100000000", "--tpm", "2000000000"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    upstream = subprocess.Popen([python, str(ROOT / "loadtests" / "fake_upstream.py"),
                                 str(upstream_port)])  # fmt: skip
    gateway = subprocess.Popen([python, "-m", "switchboard.cli", "serve"], env=env)
    try:
        wait_http(f"http://127.0.0.1:{upstream_port}/health")
        wait_http(f"http://127.0.0.1:{gateway_port}/readyz")
        up = f"http://127.0.0.1:{upstream_port}/v1/chat/completions"
        gw = f"http://127.0.0.1:{gateway_port}/v1/chat/completions"
        results = {
            "upstream_direct_json": wrk(up, BODY, None),
            "gateway_json": wrk(gw, BODY, key),
            "gateway_stream": wrk(gw, {**BODY, "stream": True}, key),
        }
    finally:
        for process in (gateway, upstream):
            process.terminate()
            process.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)
    baseline = results["upstream_direct_json"]
    added = results["gateway_json"]["p50_ms"] - baseline["p50_ms"]
    report = {"duration": DURATION, "connections": int(CONNECTIONS), "workers": int(WORKERS),
              "results": results, "added_p50_ms": round(added, 2)}  # fmt: skip
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2))
    print(f"{'scenario':24} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, row in results.items():
        print(f"{name:24} {row['requests_per_s']:>10.0f} {row['p50_ms']:>8.2f} "
              f"{row['p99_ms']:>8.2f} {row['errors']:>7}")  # fmt: skip
    print(f"gateway adds {added:.2f} ms at p50 ({OUT})")
    return 0 if all(r["errors"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Gateway overhead benchmark (``make bench-gateway``), all in one run on one box:

- the instant fake upstream directly (the baseline);
- a bare Litestar + httpx-aiohttp proxy (``bare_proxy.py``): the floor of this stack;
- the gateway with auth, limits and usage accounting on, JSON and SSE;
- optionally (``BENCH_PRODUCTION=1``) the gateway with 2 workers and Redis-backed limits.

Each is measured sequentially (1 connection: the added p50/p99 against direct) and at 32 and 64
connections (req/s, and the ratio to the bare proxy), and the gateway's RSS is read before and
after ``BENCH_REQUESTS`` (50,000) requests. The one-worker gateway's sequential figures, and the
direct and bare proxy's beside them, come from ``BENCH_ROUNDS`` (5) rounds taken in turn while
all three are up, each the median of its rounds: on a noisy machine one run's p99 drifts by a
millisecond from one minute to the next, so they are compared within the same minutes. So is
the ratio to the bare proxy at 32 connections: the median of the ratios of ``BENCH_ROUNDS``
rounds, the bare proxy and the gateway in turn (the ratio of the two runs apart, minutes from
each other, is reported beside it).

The cores are split, not shared: the server under test runs on core 0 (``taskset``), wrk and
the fake upstream on core 1, so the load generator is never what limits the server (its own
numbers are reported beside). At one connection py-spy samples the bare proxy and the gateway
(``flame.py``: flame graphs and where the time goes). Writes ``reports/bench-gateway.json`` and
``.png`` and prints a table. Traffic stays on 127.0.0.1 and every run is bounded in time.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from loadtests.bench_limits import burst_and_rest, capacity, long_streams
from loadtests.bench_summary import summarise, table
from loadtests.common import (
    REPORTS,
    free_port,
    process_tree_cpu_seconds,
    process_tree_rss,
    wait_http,
)
from loadtests.flame import profile_one_connection
from loadtests.wrk import DURATION, LOAD_CORE, SERVER_CORE, pinned, wrk

ROOT = Path(__file__).resolve().parents[1]
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "50000"))
PRODUCTION = os.environ.get("BENCH_PRODUCTION", "1") == "1"
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
BODY = {"model": "bench-model", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8}


@contextlib.contextmanager
def started(
    command: list[str], url: str, env: dict[str, str] | None = None, core: str | None = SERVER_CORE
) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        pinned(core, command) if core else command, env=env, start_new_session=True
    )
    try:
        wait_http(url, process)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=60)


def measure(
    url: str, body: dict[str, Any], key: str | None, pid: int | None = None
) -> dict[str, Any]:
    """Sequential and at 32/64 connections; with ``pid``, the server's CPU time per request
    at 32 connections too, and (JSON) the connection sweep of bench_limits.capacity."""
    wrk(url, body, key, 8, "2s")  # warm up: connection pools, caches, lazy imports
    result = {"sequential": wrk(url, body, key, 1)}
    before = process_tree_cpu_seconds(pid) if pid else 0.0
    result["c32"] = wrk(url, body, key, 32)
    if pid:
        spent = process_tree_cpu_seconds(pid) - before
        result["c32"]["cpu_us_per_request"] = round(1e6 * spent / result["c32"]["requests"], 1)
    result["c64"] = wrk(url, body, key, 64)
    if pid and not body.get("stream"):
        result["capacity"] = capacity(wrk, url, body, key)
    return result


def sequential_rounds(
    targets: dict[str, tuple[str, str | None]], body: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Each target at one connection, in turn, ROUNDS times; per target the median p50 and p99
    of its rounds, and the rounds."""
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
    for _ in range(ROUNDS):
        for name, (url, key) in targets.items():
            rounds[name].append(wrk(url, body, key, 1))
    return {
        name: {
            "p50_ms": statistics.median(run["p50_ms"] for run in runs),
            "p99_ms": statistics.median(run["p99_ms"] for run in runs),
            "requests_per_s": statistics.median(run["requests_per_s"] for run in runs),
            "errors": sum(int(run["errors"]) for run in runs),
            "rounds": runs,
        }
        for name, runs in rounds.items()
    }


def throughput_rounds(
    targets: dict[str, tuple[str, str | None]], body: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Each target at 32 connections, in turn, ROUNDS times: per target its req/s in each
    round and their median. Round by round the targets share the same minutes, so their ratio
    is compared within a round (``bench_summary.in_turn_ratio``), not between runs minutes
    apart."""
    rounds: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(ROUNDS):
        for name, (url, key) in targets.items():
            rounds[name].append(wrk(url, body, key, 32)["requests_per_s"])
    return {
        name: {"requests_per_s": statistics.median(runs), "rounds": runs}
        for name, runs in rounds.items()
    }


def first_token_ms(url: str, key: str | None, requests: int = 15) -> float:
    """Median time to the first content token of the paced model's streams, in ms."""
    body = {**BODY, "model": "bench-paced", "stream": True}
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    times = []
    with httpx.Client(timeout=60) as client:
        for _ in range(requests):
            started = time.monotonic()
            with client.stream("POST", url, json=body, headers=headers) as response:
                for line in response.iter_lines():
                    if line.startswith("data: ") and '"content":"word' in line.replace(" ", ""):
                        times.append(1000 * (time.monotonic() - started))
                        break
    return round(statistics.median(times), 2)


def soak(url: str, key: str, pid: int) -> dict[str, float]:
    """RSS of the server's process tree before and after REQUESTS more requests."""
    before = process_tree_rss(pid)
    sent = 0
    while sent < REQUESTS:
        sent += int(wrk(url, BODY, key, 32, "5s")["requests"])
    after = process_tree_rss(pid)
    return {
        "requests": sent,
        "rss_before_mb": before / 2**20,
        "rss_after_mb": after / 2**20,
        "growth_percent": 100 * (after - before) / before,
    }


def gateway_env(data: Path, port: int, upstream: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWITCHBOARD_", "PROMETHEUS"))}
    env.update(
        {
            "SWITCHBOARD_DATA_DIR": str(data),
            "SWITCHBOARD_PORT": str(port),
            "SWITCHBOARD_UPSTREAM_URLS": f"{upstream}/v1",
            "SWITCHBOARD_DEFAULT_MODEL": "bench-model",
            "SWITCHBOARD_LOG_LEVEL": "WARNING",
            "SWITCHBOARD_CACHE_MAX_ENTRIES": "0",
            "SWITCHBOARD_ENVIRONMENT": "test",
            **{f"SWITCHBOARD_{k.upper()}": v for k, v in extra.items()},
        }
    )
    return env


def mint(env: dict[str, str]) -> str:
    return (
        subprocess.run(
            [
                sys.executable,
                "-m",
                "switchboard.cli",
                "keys",
                "create",
                "--user",
                "bench",
                "--rpm",
                "100000000",
                "--tpm",
                "2000000000",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        .stdout.strip()
        .splitlines()[-1]
    )


def run_gateway(
    name: str,
    upstream: str,
    workers: int,
    redis_url: str = "",
    while_up: Callable[[str, str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """The gateway's figures; ``while_up(url, key, result)`` runs while it is still up."""
    data = Path(tempfile.mkdtemp(prefix=f"sb-bench-{name}-"))
    port = free_port()
    extra = {"workers": str(workers)}
    if redis_url:
        extra["redis_url"] = redis_url
    env = gateway_env(data, port, upstream, **extra)
    # the user's own limits too (the default would cap the run at 60 requests a minute)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "switchboard.cli",
            "users",
            "create",
            "bench",
            "--rpm",
            "100000000",
            "--tpm",
            "2000000000",
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    key = mint(env)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    core = SERVER_CORE if workers == 1 else None  # several workers: both cores, shared
    try:
        with started(
            [sys.executable, "-m", "switchboard.cli", "serve"],
            f"http://127.0.0.1:{port}/readyz",
            env,
            core,
        ) as gateway:
            idle_mb = process_tree_rss(gateway.pid) / 2**20
            result: dict[str, Any] = {
                "json": measure(url, BODY, key, gateway.pid),
                "sse": measure(url, {**BODY, "stream": True}, key, gateway.pid),
            }
            result["ttft_ms"] = first_token_ms(url, key)
            result["long_streams"] = long_streams(url, key)
            result["rss"] = {
                "idle_mb": idle_mb,
                **soak(url, key, gateway.pid),
                **burst_and_rest(wrk, url, BODY, key, gateway.pid),
            }
            if workers == 1:
                result["profile_c1"] = profile_one_connection(
                    "bench-gateway", gateway.pid, (url, BODY, key), REPORTS
                )
            if while_up:
                while_up(url, key, result)
            return result
    finally:
        shutil.rmtree(data, ignore_errors=True)


def bare_proxy_command(port: int) -> list[str]:
    """granian serving loadtests/bare_proxy.py with one worker on ``port``."""
    # a table, hence fmt: skip: each flag beside its value, as on a command line
    return [
        sys.executable, "-m", "granian",
        "--interface", "asgi",
        "--factory",
        "--workers", "1",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--no-ws",
        "--log-level", "warning",
        "loadtests.bare_proxy:create_app",
    ]  # fmt: skip


def main() -> int:
    if not shutil.which("wrk"):
        print("bench: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 1
    upstream_port, bare_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{upstream_port}"
    python = sys.executable
    report: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "duration": DURATION,
        "cores": "server under test on core 0; wrk and the fake upstream on core 1 "
        "(the 2-worker production run uses both cores for the gateway)",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average_before": round(os.getloadavg()[0], 2),
    }
    with started(
        [python, str(ROOT / "loadtests" / "fake_upstream.py"), str(upstream_port)],
        f"{upstream}/health",
        core=LOAD_CORE,
    ):
        direct = f"{upstream}/v1/chat/completions"
        report["direct"] = {
            "json": measure(direct, BODY, None),
            "sse": measure(direct, {**BODY, "stream": True}, None),
            "ttft_ms": first_token_ms(direct, None),
            "long_streams": long_streams(direct, None),
        }
        bare_env = {**os.environ, "UPSTREAM": upstream, "PYTHONPATH": str(ROOT)}
        bare = bare_proxy_command(bare_port)
        bare_url = f"http://127.0.0.1:{bare_port}/v1/chat/completions"
        tuned_port = free_port()
        tuned = bare_proxy_command(tuned_port)
        tuned_url = f"http://127.0.0.1:{tuned_port}/v1/chat/completions"
        with (
            started(bare, bare_url, bare_env) as proxy,
            started(tuned, tuned_url, {**bare_env, "BARE_HEAP_TUNED": "1"}),
        ):
            report["bare_proxy_heap_tuned"] = {}  # its rounds at 32 connections (in_turn)
            report["bare_proxy"] = {
                "json": measure(bare_url, BODY, None, proxy.pid),
                "sse": measure(bare_url, {**BODY, "stream": True}, None, proxy.pid),
                "ttft_ms": first_token_ms(bare_url, None),
                "long_streams": long_streams(bare_url, None),
                "profile_c1": profile_one_connection(
                    "bench-bare-proxy", proxy.pid, (bare_url, BODY, None), REPORTS
                ),
            }

            def in_turn(url: str, key: str, gateway: dict[str, Any]) -> None:
                """The sequential figures of direct, bare proxy and gateway, taken in turn."""
                runs = {"direct": report["direct"], "bare_proxy": report["bare_proxy"]}
                runs["gateway"] = gateway
                runs["bare_proxy_heap_tuned"] = report["bare_proxy_heap_tuned"]
                targets: dict[str, tuple[str, str | None]] = {
                    "direct": (direct, None),
                    "bare_proxy": (bare_url, None),
                }
                targets["gateway"] = (url, key)
                for kind, body in (("json", BODY), ("sse", {**BODY, "stream": True})):
                    for name, figures in sequential_rounds(targets, body).items():
                        runs[name][kind]["sequential"] = figures
                    loaded = {
                        "bare_proxy": targets["bare_proxy"],
                        "bare_proxy_heap_tuned": (tuned_url, None),
                        "gateway": targets["gateway"],
                    }
                    for name, figures in throughput_rounds(loaded, body).items():
                        runs[name].setdefault(kind, {})["c32_in_turn"] = figures

            report["gateway"] = run_gateway("one", upstream, workers=1, while_up=in_turn)
        if PRODUCTION:
            from tests.support.redis_server import RedisServer

            redis = RedisServer()
            try:
                report["gateway_2_workers_redis"] = run_gateway("prod", upstream, 2, redis.url)
            finally:
                redis.stop()
    report["load_average_after"] = round(os.getloadavg()[0], 2)
    summarise(report)
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "bench-gateway.json").write_text(json.dumps(report, indent=2))
    print(table(report))
    from loadtests.plots import plot_gateway

    plot_gateway(report, REPORTS / "bench-gateway.png")
    print(f"wrote {REPORTS / 'bench-gateway.json'} and bench-gateway.png")
    return 0 if report["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

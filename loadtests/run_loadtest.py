"""Headless Locust runs, bounded in time, with CSV, the HTML report and plots in ``reports/``.

``make loadtest USERS=8 SPAWN=2 DURATION=60s [TARGET=http://host:port]``: one run of every
scenario in ``locustfile.py``. Without TARGET the embedded stack is started and provisioned;
with one, pass ``LOADTEST_USERNAME``/``LOADTEST_PASSWORD``/``LOADTEST_KEY``/``LOADTEST_ABUSE_KEY``.

``make loadtest-sweep LEVELS=1,2,4,8,16,32 DURATION=45s``: browser users only, one run per
level, to find how many people chatting at once keep the p95 time to first token within the
SLO (``SLO_TTFT_P95`` seconds, 2 by default: a first token within two seconds). Writes
``reports/loadtest-sweep.json``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from loadtests.common import REPORTS

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"


@contextlib.contextmanager
def target() -> Iterator[tuple[str, dict[str, str]]]:
    """The base URL and the accounts' environment: a given TARGET, or the embedded stack."""
    given = os.environ.get("TARGET", "")
    if given:
        yield given.rstrip("/"), {}
        return
    from loadtests.stack import embedded_stack

    with embedded_stack() as stack:
        yield (
            stack.gateway_url,
            {
                "LOADTEST_USERNAME": stack.username,
                "LOADTEST_PASSWORD": stack.password,
                "LOADTEST_KEY": stack.key,
                "LOADTEST_ABUSE_KEY": stack.abuse_key,
            },
        )


def locust(
    host: str,
    env: dict[str, str],
    users: int,
    spawn: float,
    duration: str,
    prefix: str,
    classes: list[str] | None = None,
) -> dict[str, Any]:
    """One headless run; the aggregated stats of each request name."""
    REPORTS.mkdir(exist_ok=True)
    streams = REPORTS / f"{prefix}-streams.json"
    # a table, hence fmt: skip: each flag beside its value, as on a command line
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
               "--host", host, "-u", str(users), "-r", str(spawn), "--run-time", duration,
               "--stop-timeout", "60", "--csv", str(REPORTS / prefix), "--csv-full-history",
               "--html", str(REPORTS / f"{prefix}.html"), "--only-summary",
               "--exit-code-on-error", "0", *(classes or [])]  # fmt: skip
    subprocess.run(
        command,
        env={**os.environ, **env, "LOADTEST_STREAMS_FILE": str(streams)},
        check=True,
        timeout=3600,
    )
    with (REPORTS / f"{prefix}_stats.csv").open() as stats:
        rows = {f"{row['Type']} {row['Name']}".strip(): row for row in csv.DictReader(stats)}
    return {
        "users": users,
        "duration": duration,
        "stats": rows,
        "streams": json.loads(streams.read_text()) if streams.exists() else [],
    }


def single() -> int:
    users = int(os.environ.get("USERS", "8"))
    spawn = float(os.environ.get("SPAWN", "2"))
    duration = os.environ.get("DURATION", "60s")
    with target() as (host, env):
        run = locust(host, env, users, spawn, duration, "loadtest")
    (REPORTS / "loadtest.json").write_text(json.dumps(run, indent=2))
    from loadtests.plots import plot_history

    plot_history(REPORTS / "loadtest_stats_history.csv", REPORTS / "loadtest.png")
    five_xx = [
        name
        for name, row in run["stats"].items()
        if name != "Aggregated" and int(row["Failure Count"]) > 0
    ]
    print(f"loadtest: {REPORTS / 'loadtest.html'}; requests with failures: {five_xx or 'none'}")
    return 0


def sweep() -> int:
    levels = [int(n) for n in os.environ.get("LEVELS", "1,2,4,8,16,32").split(",")]
    duration = os.environ.get("DURATION", "45s")
    slo = float(os.environ.get("SLO_TTFT_P95", "2"))
    results = []
    with target() as (host, env):
        for users in levels:
            run = locust(host, env, users, users, duration, f"sweep-{users}", ["BrowserUser"])
            ttft = run["stats"].get("TTFT chat", {})
            p95 = float(ttft.get("95%", "nan") or "nan") / 1000
            results.append(
                {
                    "users": users,
                    "ttft_p50_s": float(ttft.get("50%", "nan") or "nan") / 1000,
                    "ttft_p95_s": p95,
                    "answers": int(ttft.get("Request Count", 0) or 0),
                    "requests_per_s": float(run["stats"]["Aggregated"]["Requests/s"]),
                    "failures": int(run["stats"]["Aggregated"]["Failure Count"]),
                }
            )
            print(f"sweep: {users} users -> p95 TTFT {p95:.2f} s", flush=True)
    passing = [row["users"] for row in results if row["ttft_p95_s"] <= slo and row["answers"]]
    report = {
        "slo_ttft_p95_s": slo,
        "duration": duration,
        "levels": results,
        "max_users_within_slo": max(passing) if passing else 0,
    }
    (REPORTS / "loadtest-sweep.json").write_text(json.dumps(report, indent=2))
    from loadtests.plots import plot_sweep

    plot_sweep(report, REPORTS / "loadtest-sweep.png")
    print(f"sweep: at most {report['max_users_within_slo']} users within p95 TTFT <= {slo} s")
    return 0


if __name__ == "__main__":
    sys.exit(sweep() if sys.argv[1:] == ["sweep"] else single())

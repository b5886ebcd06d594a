"""wrk, the load generator of the benchmarks: one run, its rate, latency and errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from typing import Any

DURATION = os.environ.get("BENCH_DURATION", "8s")
SERVER_CORE, LOAD_CORE = "0", "1"


def pinned(core: str, command: list[str]) -> list[str]:
    return (
        ["taskset", "-c", core, *command]
        if shutil.which("taskset") and os.cpu_count() != 1
        else command
    )


def wrk(
    url: str, body: dict[str, Any], key: str | None, connections: int, duration: str = DURATION
) -> dict[str, float]:
    headers = 'wrk.headers["Content-Type"] = "application/json"\n'
    if key:
        headers += f'wrk.headers["Authorization"] = "Bearer {key}"\n'
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(json.dumps(body))}\n{headers}')
    threads = "1" if connections < 2 else "2"
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}",
        "--latency",
        "-s",
        script.name,
        url,
    ]
    result = subprocess.run(
        pinned(LOAD_CORE, command), capture_output=True, text=True, timeout=600, check=True
    )
    os.unlink(script.name)
    text = result.stdout
    rps_line = re.search(r"Requests/sec:\s+([\d.]+)", text)
    count_line = re.search(r"(\d+) requests in", text)
    if rps_line is None or count_line is None:
        raise RuntimeError(f"wrk printed no summary:\n{text}")
    rps, count = float(rps_line.group(1)), int(count_line.group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )

    def ms(label: str) -> float:
        match = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", text)
        assert match, text
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return {
        "requests_per_s": rps,
        "requests": count,
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "errors": (int(non2xx.group(1)) if non2xx else 0)
        + (sum(int(n) for n in errors.groups()) if errors else 0),
    }

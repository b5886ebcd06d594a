"""Where a server's time goes at one connection: py-spy samples its worker while wrk keeps one
connection busy (``make bench-gateway``, for the gateway and the bare proxy).

Two recordings of ``BENCH_PROFILE_SECONDS`` (10) each: a flame graph
(``reports/<name>-flame-c1.svg``) to look at, and py-spy's collapsed stacks, summed here into a
few shares of the worker's busy samples (idle threads are not sampled) that a report can print
beside the latency figures:

- ``granian_rust``: granian's own threads (no Python frames: HTTP parsing, the socket);
- ``asgi_send``: the app's thread inside granian's ``send`` (the response handed to Rust);
- ``event_loop``: the event loop and granian's Python glue (polling, callbacks, scheduling the
  app's tasks: no frame of the app's);
- ``usage_writer``: the usage rows' inserts (``db/bulk.py``, a thread of their own);
- then each package whose code the app's thread was running: ``litestar``, ``switchboard``,
  ``httpx``, ``aiohttp``... (``other`` for the rest).
"""

from __future__ import annotations

import collections
import importlib.util
import linecache
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from loadtests.wrk import wrk

PROFILE_SECONDS = int(os.environ.get("BENCH_PROFILE_SECONDS", "10"))
PY_SPY = Path(sys.executable).with_name("py-spy")
SEND = "await send("
"""A line of Python that hands a message to the server: granian's Rust runs under it."""


def source_line(frame: str) -> str:
    """The line of code a collapsed frame (``func (package/module.py:LINE)``) points at."""
    location = frame.rpartition(" (")[2].rstrip(")")
    relative, _, line = location.rpartition(":")
    if not line.isdigit():
        return ""
    top = relative.split("/", 1)[0]
    try:
        spec = importlib.util.find_spec(top) if "/" in relative else None
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return ""
    candidate = Path(next(iter(spec.submodule_search_locations))).parent / relative
    return linecache.getline(str(candidate), int(line)).strip()


def package_of(frame: str) -> str:
    location = frame.rpartition(" (")[2]
    return location.split("/", 1)[0] if "/" in location else "other"


def category(frames: list[str]) -> str:
    """The share a sample counts in: ``frames`` outermost first, the process and thread
    entries of py-spy's ``--subprocesses --threads`` already removed."""
    if not frames:
        return "granian_rust"
    if any("db/bulk.py" in frame for frame in frames):
        return "usage_writer"
    leaf = frames[-1]
    if source_line(leaf).startswith(SEND):
        return "asgi_send"
    package = package_of(leaf)
    if package == "granian":
        return "event_loop"
    return package


def shares(collapsed: Iterable[str]) -> dict[str, Any]:
    """py-spy's raw output (``frame;frame;... COUNT`` per line) as shares of all samples."""
    counts: collections.Counter[str] = collections.Counter()
    for line in collapsed:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not count.isdigit():
            continue
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        counts[category(frames)] += int(count)
    total = sum(counts.values())
    return {
        "samples": total,
        "shares": {name: round(n / total, 3) for name, n in counts.most_common()} if total else {},
    }


RATE = 250
"""py-spy's samples per second of each thread."""


def record(
    pid: int, output: Path, fmt: str, load: tuple[str, dict[str, Any], str | None]
) -> float | None:
    """py-spy on ``pid`` and its workers while wrk keeps one connection busy: wrk's req/s, or
    None if py-spy failed."""
    spy = subprocess.Popen(  # nosec B603 - our own command line
        [str(PY_SPY), "record", "--pid", str(pid), "--subprocesses", "--threads",
         "--nonblocking", "--rate", str(RATE), "--duration", str(PROFILE_SECONDS),
         "--format", fmt, "--output", str(output)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    url, body, key = load
    rate = wrk(url, body, key, 1, f"{PROFILE_SECONDS + 2}s")["requests_per_s"]
    _, errors = spy.communicate(timeout=120)
    if spy.returncode != 0 or not output.exists():
        print(f"bench: py-spy failed ({errors.decode(errors='replace').strip()[-300:]})")
        return None
    return rate


def profile_one_connection(
    name: str, pid: int, load: tuple[str, dict[str, Any], str | None], reports: Path
) -> dict[str, Any]:
    """The flame graph ``reports/<name>-flame-c1.svg``, the shares and each share as sampled
    thread time per request (µs; threads that run at once both count); ``{}`` without py-spy
    (not installed, or ptrace not permitted)."""
    if not PY_SPY.exists():
        return {}
    reports.mkdir(exist_ok=True)
    svg = reports / f"{name}-flame-c1.svg"
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch) / "stacks.txt"
        if record(pid, svg, "flamegraph", load) is None:
            return {}
        if (requests_per_s := record(pid, raw, "raw", load)) is None:
            return {}
        with raw.open() as lines:
            found = shares(lines)
    per_request = 1e6 * found["samples"] / RATE / (requests_per_s * PROFILE_SECONDS)
    return {
        "flamegraph": svg.name,
        "seconds": PROFILE_SECONDS,
        "requests_per_s": requests_per_s,
        **found,
        "us_per_request": {k: round(v * per_request) for k, v in found["shares"].items()},
    }

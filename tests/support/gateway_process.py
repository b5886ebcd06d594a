"""The gateway as production runs it: ``switchboard serve`` (granian, N workers) in a process
group of its own, configured by environment variables; stopped, workers included, on exit."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support.live import free_port

DEADLINE = 180.0
"""Seconds a server may take to start or stop on a busy machine."""


@contextlib.contextmanager
def gateway_process(
    data_dir: Path, ready_path: str = "/healthz", **settings: str | int
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Start ``switchboard serve`` with ``SWITCHBOARD_<NAME>=value`` for each setting; yield the
    process and its base URL once ``ready_path`` answers 200."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SWITCHBOARD", "PROMETHEUS"))},
        "SWITCHBOARD_PORT": str(port), "SWITCHBOARD_DATA_DIR": str(data_dir),
        "SWITCHBOARD_LOG_LEVEL": "WARNING", "SWITCHBOARD_ENVIRONMENT": "test",
        **{f"SWITCHBOARD_{name.upper()}": str(value) for name, value in settings.items()},
    }  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "switchboard.cli", "serve"], env=env, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        give_up = time.monotonic() + DEADLINE
        while True:
            assert process.poll() is None, "the gateway exited while starting"
            try:
                if httpx.get(url + ready_path, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < give_up, "the gateway did not start in time"
            time.sleep(0.2)
        yield process, url
    finally:
        process.terminate()
        try:
            process.wait(timeout=DEADLINE)
        finally:  # whatever is left of the group (workers, if the server hung), then reap it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=DEADLINE)

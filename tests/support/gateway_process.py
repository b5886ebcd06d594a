"""The gateway as production runs it: ``switchboard serve`` (granian, N workers) in a process
group of its own, configured by environment variables; stopped, workers included, on exit."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.support.live import free_port
from tests.support.waiting import responds, wait_for

DEADLINE = 180.0
"""Seconds a server may take to start or stop on a busy machine."""


def gateway_env(data_dir: Path, **settings: str | int) -> dict[str, str]:
    """The environment of a gateway (or of a ``switchboard`` command run for it): this one
    without any setting of ours, then ``SWITCHBOARD_<NAME>=value`` for each of ``settings``."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SWITCHBOARD", "PROMETHEUS"))},
        "SWITCHBOARD_DATA_DIR": str(data_dir),
        "SWITCHBOARD_LOG_LEVEL": "WARNING",
        "SWITCHBOARD_ENVIRONMENT": "test",
        **{f"SWITCHBOARD_{name.upper()}": str(value) for name, value in settings.items()},
    }


@contextlib.contextmanager
def gateway_process(
    data_dir: Path, ready_path: str = "/healthz", **settings: str | int
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Start ``switchboard serve`` with ``SWITCHBOARD_<NAME>=value`` for each setting; yield the
    process and its base URL once ``ready_path`` answers 200."""
    port = free_port()
    env = gateway_env(data_dir, **settings, port=port)
    process = subprocess.Popen(
        [sys.executable, "-m", "switchboard.cli", "serve"], env=env, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: responds(url + ready_path), "the gateway starts", DEADLINE, 0.2, process=process
        )
        yield process, url
    finally:
        process.terminate()
        try:
            process.wait(timeout=DEADLINE)
        finally:  # whatever is left of the group (workers, if the server hung), then reap it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=DEADLINE)

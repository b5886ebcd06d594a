"""``make run``: the whole embedded stack (vLLM on the CPU + the gateway on SQLite) in one command.

Installs what is missing, starts both, waits until ``/readyz`` answers 200, prints the URL and
stops both cleanly on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import httpx

from switchboard.devstack.model_server import REPO_ROOT, ModelServer
from switchboard.settings import Settings


def say(message: str) -> None:
    print(f"switchboard: {message}", flush=True)


def app_command(settings: Settings) -> list[str]:
    """The production server command: granian serving the app factory."""
    # a table, hence fmt: skip: each flag beside its value, as on a command line
    return [
        sys.executable, "-m", "granian",
        "--interface", "asgi",
        "--factory", "switchboard.app:create_app",
        "--host", settings.host,
        "--port", str(settings.port),
        "--workers", str(settings.workers),
        # a worker that does not stop is killed: SIGTERM during start-up must not hang
        "--workers-kill-timeout", str(max(10, int(settings.shutdown_grace) + 10)),
        "--no-access-log",
    ]  # fmt: skip


def prepare_multiprocess_metrics(settings: Settings) -> None:
    """With several workers, prometheus-client keeps each worker's values in files that
    /metrics aggregates: point it (its own variable, which the workers inherit) at a fresh
    directory before they start."""
    if settings.workers <= 1:
        return
    directory = Path(settings.data_dir) / "prometheus-multiproc"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory.resolve())


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=3).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"the app was not ready after {timeout:.0f}s ({url}/readyz)")


async def has_admin(settings: Settings) -> bool:
    from switchboard.accounts.tables import User
    from switchboard.db.engine import build_engine, close_engine, open_engine
    from switchboard.db.registry import install_engine

    engine = build_engine(settings.resolved_database_url)
    install_engine(engine)
    await open_engine(engine, 1)
    try:
        return bool(await User.exists().where(User.role == "admin"))
    finally:
        await close_engine(engine)


def run_stack(settings: Settings) -> int:
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        say(f"received {signal.Signals(signum).name}, stopping")
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    model = ModelServer(settings)
    app: subprocess.Popen[bytes] | None = None
    try:
        say("checking the model tier (first run: installs vLLM for the CPU and converts the model)")
        model.install()
        if model.is_healthy():
            say(f"a model server already answers on {model.url}; using it")
        else:
            say(f"starting vLLM on {model.url} (about 2 minutes on 2 cores; log: {model.log_path})")
            model.start()
            last = [0.0]

            def progress(elapsed: float) -> None:
                if stop.is_set():
                    raise KeyboardInterrupt
                if elapsed - last[0] >= 15:
                    last[0] = elapsed
                    say(f"  still loading the model ({elapsed:.0f}s)")

            model.wait_ready(progress=progress)
        say("model server healthy; starting the app")
        prepare_multiprocess_metrics(settings)
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
        command, cwd = app_command(settings), Path.cwd()
        app = subprocess.Popen(command, env=env, cwd=cwd)  # our server command  # nosec B603
        wait_ready(settings.base_url, app, timeout=120)
        say(f"ready: open {settings.base_url}/   (API: {settings.base_url}/v1 · Ctrl-C stops)")
        if not asyncio.run(has_admin(settings)):
            say("no administrator yet: create the first one (it asks a password) with")
            say("  .venv/bin/switchboard users create YOUR_NAME --admin")
        while not stop.is_set():
            if app.poll() is not None:
                say(f"the app exited with {app.returncode}")
                return 1
            if model.process is not None and model.process.poll() is not None:
                say(f"the model server exited:\n{model.log_tail()}")
                return 1
            stop.wait(1)
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        if app is not None and app.poll() is None:
            app.terminate()
            try:
                app.wait(timeout=15)
            except subprocess.TimeoutExpired:
                app.kill()
        if model.process is not None:
            say("stopping the model server")
            model.stop()
        say("stopped")

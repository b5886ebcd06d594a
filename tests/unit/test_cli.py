"""The switchboard command: users and keys."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")},
        "SWITCHBOARD_DATA_DIR": str(tmp_path),
        "SWITCHBOARD_LOG_LEVEL": "WARNING",
    }
    return subprocess.run(
        [sys.executable, "-m", "switchboard.cli", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_users_and_keys_from_the_command_line(tmp_path: Path) -> None:
    created = cli(tmp_path, "users", "create", "ops", "--admin", "--password", "pw-123456789012")
    assert created.returncode == 0, created.stderr
    assert "created admin 'ops'" in created.stdout
    assert cli(tmp_path, "users", "create", "ops").returncode == 1

    minted = cli(tmp_path, "keys", "create", "--user", "ci-bot", "--rpm", "5", "--tpm", "900",
                 "--expires", "30")  # fmt: skip
    assert minted.returncode == 0, minted.stderr
    secret = minted.stdout.strip()
    assert secret.startswith("sk-sb-")
    assert "shown once" in minted.stderr
    assert "created member 'ci-bot'" in minted.stderr

    listed = cli(tmp_path, "keys", "list", "--user", "ci-bot")
    assert secret[:12] in listed.stdout
    assert "active" in listed.stdout
    assert "rpm=5 tpm=900" in listed.stdout
    key_id = listed.stdout.split()[0]
    assert cli(tmp_path, "keys", "revoke", key_id).returncode == 0
    assert "revoked" in cli(tmp_path, "keys", "list", "--user", "ci-bot").stdout
    assert cli(tmp_path, "keys", "revoke", key_id).returncode == 1
    assert cli(tmp_path, "keys", "list", "--user", "nobody").returncode == 1


@pytest.mark.parametrize("bad", [["keys", "create", "--user", "x", "--rpm", "0"], ["keys"]])
def test_bad_arguments_are_refused(tmp_path: Path, bad: list[str]) -> None:
    assert cli(tmp_path, *bad).returncode == 2


def test_a_bad_setting_is_a_clear_error(tmp_path: Path) -> None:
    env_cli = subprocess.run(
        [sys.executable, "-m", "switchboard.cli", "migrate"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "SWITCHBOARD_PORT": "http"},
    )  # fmt: skip
    assert env_cli.returncode == 2
    assert "SWITCHBOARD_PORT='http'" in env_cli.stderr

"""The switchboard command: users, keys, budgets and prices."""

import contextlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def cli(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")},
        "SWITCHBOARD_DATA_DIR": str(tmp_path),
        "SWITCHBOARD_LOG_LEVEL": "WARNING",
    }
    return subprocess.run(
        [sys.executable, "-m", "switchboard.cli", *args],
        cwd=tmp_path,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_password_from_standard_input_even_one_that_starts_with_a_dash(tmp_path: Path) -> None:
    """For scripts: on the command line a password shows in `ps`, and argparse takes one that
    starts with '-' for an option."""
    password = "-pw-123456789012"
    created = cli(tmp_path, "users", "create", "ops", "--password-stdin", stdin=password + "\n")
    assert created.returncode == 0, created.stderr
    with contextlib.closing(sqlite3.connect(tmp_path / "switchboard.sqlite3")) as db:
        (stored,) = db.execute("SELECT password_hash FROM users WHERE username='ops'").fetchone()
    from switchboard.accounts.services import verify_password

    assert verify_password(stored, password)
    empty = cli(tmp_path, "users", "create", "nobody", "--password-stdin", stdin="")
    assert empty.returncode == 1
    assert "no password on standard input" in empty.stderr
    both = cli(tmp_path, "users", "create", "x", "--password", "p", "--password-stdin")
    assert both.returncode == 2
    assert "not allowed with" in both.stderr


def test_users_and_keys_from_the_command_line(tmp_path: Path) -> None:
    created = cli(tmp_path, "users", "create", "ops", "--admin", "--password", "pw-123456789012")
    assert created.returncode == 0, created.stderr
    assert "created admin 'ops'" in created.stdout
    assert cli(tmp_path, "users", "create", "ops").returncode == 1

    minted = cli(
        tmp_path,
        "keys",
        "create",
        "--user",
        "ci-bot",
        "--rpm",
        "5",
        "--tpm",
        "900",
        "--expires",
        "30",
    )
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


def test_budgets_and_prices_from_the_command_line(tmp_path: Path) -> None:
    assert cli(tmp_path, "keys", "create", "--user", "ci-bot").returncode == 0
    key_id = cli(tmp_path, "keys", "list", "--user", "ci-bot").stdout.split()[0]
    priced = cli(tmp_path, "prices", "set", "m", "--prompt", "0.5", "--completion", "1.5")
    assert priced.returncode == 0, priced.stderr
    by_key = cli(tmp_path, "budgets", "set", "--key", key_id, "--tokens", "5000")
    assert by_key.returncode == 0, by_key.stderr
    assert f"monthly budget of key {key_id}: 5000 tokens" in by_key.stdout
    by_user = cli(tmp_path, "budgets", "set", "--user", "ci-bot", "--money", "12.5")
    assert "monthly budget of user" in by_user.stdout
    assert cli(tmp_path, "budgets", "set", "--user", "nobody", "--tokens", "5").returncode == 1
    bad = cli(tmp_path, "budgets", "set", "--key", key_id, "--tokens", "1.5")
    assert (bad.returncode, "whole number" in bad.stderr) == (1, True)
    assert cli(tmp_path, "prices", "set", "m", "--prompt", "x", "--completion", "1").returncode == 1

    with contextlib.closing(sqlite3.connect(tmp_path / "switchboard.sqlite3")) as database:
        budgets = database.execute("SELECT kind, tokens, money FROM budgets ORDER BY kind")
        assert budgets.fetchall() == [("key", 5000, None), ("user", None, 12.5)]
        prices = database.execute("SELECT model, prompt_per_million FROM model_prices")
        assert prices.fetchall() == [("m", 0.5)]


@pytest.mark.parametrize("bad", [["keys", "create", "--user", "x", "--rpm", "0"], ["keys"]])
def test_bad_arguments_are_refused(tmp_path: Path, bad: list[str]) -> None:
    assert cli(tmp_path, *bad).returncode == 2


def test_a_bad_setting_is_a_clear_error(tmp_path: Path) -> None:
    env_cli = subprocess.run(
        [sys.executable, "-m", "switchboard.cli", "migrate"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SWITCHBOARD_PORT": "http"},
    )
    assert env_cli.returncode == 2
    assert "SWITCHBOARD_PORT='http'" in env_cli.stderr

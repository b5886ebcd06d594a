"""The guard of tests/support/suites.py, on a tree of its own run by a separate pytest: an
expected suite that collected nothing, or whose every test was skipped, fails the session; the
engine suites without their variable are skipped, saying why, never left out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

PASSING = "def test_one():\n    assert True\n"


def run_pytest(
    root: Path, expect: str | None, *args: str, plugins: bool = False
) -> subprocess.CompletedProcess[str]:
    """pytest in ``root`` with the guard; ``plugins``: the installed plugins too (slower)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEST_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    if not plugins:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    if expect is not None:
        env["TEST_EXPECT_SUITES"] = expect
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.support.suites",
            "-p",
            "no:cacheprovider",
            "-rs",
            *args,
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def tree(root: Path, files: dict[str, str]) -> Path:
    (root / "pytest.ini").write_text("[pytest]\n")  # the root directory: here
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_an_expected_suite_that_collected_nothing_fails_the_session(tmp_path: Path) -> None:
    root = tree(tmp_path, {"suites/full/test_full.py": PASSING, "suites/empty/helpers.py": ""})
    done = run_pytest(root, "suites/full suites/empty", "suites")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "TEST_EXPECT_SUITES: no test collected in suites/empty" in done.stdout
    assert "1 passed" not in done.stdout  # nothing ran once the run was known to be void


def test_a_suite_that_does_not_exist_fails_too(tmp_path: Path) -> None:
    root = tree(tmp_path, {"suites/full/test_full.py": PASSING})
    done = run_pytest(root, "suites/full,suites/typo/", "suites")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "no test collected in suites/typo" in done.stdout


def test_an_expected_suite_whose_every_test_was_skipped_fails(tmp_path: Path) -> None:
    skipped = "import pytest\n\n@pytest.mark.skip(reason='no engine here')\ndef test_one(): pass\n"
    root = tree(tmp_path, {"suites/full/test_full.py": PASSING, "suites/off/test_off.py": skipped})
    done = run_pytest(root, "suites/full suites/off", "suites")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "every test in suites/off was skipped (Skipped: no engine here)" in done.stdout


def test_expected_suites_that_ran_pass_and_deselection_does_not_empty_them(
    tmp_path: Path,
) -> None:
    two = PASSING + "\n\ndef test_two():\n    assert True\n"
    root = tree(tmp_path, {"suites/a/test_a.py": two, "suites/b/test_b.py": PASSING})
    assert run_pytest(root, "suites/a suites/b", "suites").returncode == 0
    # -k leaves suites/b nothing to run: it was collected, so that is the caller's choice
    done = run_pytest(root, "suites/a suites/b", "suites", "-k", "two")
    assert done.returncode == 0, done.stdout + done.stderr


def test_without_the_variable_nothing_is_checked(tmp_path: Path) -> None:
    root = tree(tmp_path, {"suites/a/test_a.py": PASSING, "suites/empty/helpers.py": ""})
    assert run_pytest(root, None, "suites").returncode == 0
    assert run_pytest(root, "", "suites").returncode == 0


def test_the_engine_suites_are_skipped_with_the_reason_without_their_variable(
    tmp_path: Path,
) -> None:
    root = tree(tmp_path, {"tests/images/test_i.py": PASSING, "tests/scale/test_s.py": PASSING})
    done = run_pytest(root, None, "tests")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 skipped" in done.stdout
    assert "tests/images runs with TEST_IMAGES=1: `make test-images`" in done.stdout
    assert "tests/scale runs with TEST_SCALE=1: `make test-scale`" in done.stdout
    # and a run that expects them fails instead of passing on skips
    assert run_pytest(root, "tests/images", "tests").returncode == 1


def test_the_repository_collects_every_engine_suite_as_skipped_tests() -> None:
    """The real tree: no suite is left out of a plain run (it once was, in silence)."""
    done = run_pytest(
        REPO_ROOT,
        "tests/images tests/deploy tests/scale",
        "--collect-only",
        "-q",
        "tests/images",
        "tests/deploy",
        "tests/scale",
        plugins=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for suite in ("tests/images/", "tests/deploy/", "tests/scale/"):
        assert suite in done.stdout


def test_a_unit_test_that_asks_for_a_server_fails_saying_where_it_belongs(tmp_path: Path) -> None:
    """tests/unit/conftest.py, under a tree whose root conftest offers a Redis as the real one
    does (tests/support/stack_fixtures.py): ``make unit`` starts no server, even by mistake."""
    offers = (
        "import pytest\n\n@pytest.fixture(scope='session')\ndef redis_server():\n    return 1\n\n"
        "@pytest.fixture\ndef redis_url(redis_server):\n    return redis_server\n"
    )
    root = tree(
        tmp_path,
        {
            "conftest.py": offers,
            "unit/conftest.py": (REPO_ROOT / "tests/unit/conftest.py").read_text(),
            "unit/test_probe.py": "def test_wants_redis(redis_url):\n    pass\n",
            "other/test_fine.py": "def test_wants_redis(redis_url):\n    assert redis_url == 1\n",
        },
    )
    done = run_pytest(root, None, "unit", "other")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "a test that needs Redis belongs in tests/integration" in done.stdout
    assert "1 passed, 1 error" in done.stdout

"""Suites that cannot run say so, and CI fails when a suite it expects did not run.

Two rules, one pytest plugin (loaded by tests/conftest.py):

* The suites that need a container engine and the built images (tests/images, tests/deploy,
  tests/scale) are always collected. Without the variable their Make target sets, each of their
  tests is skipped with the reason and the command that runs it, never left out in silence.
* ``TEST_EXPECT_SUITES`` (directories relative to the root directory, separated by spaces or
  commas) names the suites a run must prove: the session fails when one of them collected no
  test (before ``-k``/``-m`` deselect any), or when every test of it was skipped. The Make
  targets and the .ci scripts set it; ``TEST_EXPECT_SUITES= make ...`` turns the check off.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

EXPECT_VARIABLE = "TEST_EXPECT_SUITES"

GATED: dict[str, tuple[str, str]] = {
    "tests/images": ("TEST_IMAGES", "make test-images"),
    "tests/deploy": ("TEST_DEPLOY", "make test-deploy"),
    "tests/scale": ("TEST_SCALE", "make test-scale"),
}
"""Suite → (the variable that lets it run, the command that sets it)."""


@dataclass
class Tally:
    collected: int = 0
    ran: int = 0
    skipped: list[str] = field(default_factory=list)
    """The reasons of the skipped tests."""


def expected_suites(value: str | None) -> list[str]:
    """The suites named by ``TEST_EXPECT_SUITES`` (spaces or commas; trailing slashes ignored)."""
    names = (value or "").replace(",", " ").split()
    return [name.strip("/") for name in names if name.strip("/")]


def suite_of(path: Path, root: Path, suites: list[str]) -> str | None:
    """The suite (one of ``suites``) that ``path`` lies in, if any."""
    try:
        relative = path.relative_to(root).as_posix()
    except ValueError:
        return None
    return next((s for s in suites if relative == s or relative.startswith(f"{s}/")), None)


class SuiteGuard:
    def __init__(self, root: Path, expected: list[str]) -> None:
        self.root = root
        self.tallies = {suite: Tally() for suite in expected}
        self.problems: list[str] = []

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Counts before ``-k``/``-m`` deselect; marks the gated suites' tests skipped when
        their variable is missing."""
        for item in items:
            suite = suite_of(item.path, self.root, list(self.tallies))
            if suite is not None:
                self.tallies[suite].collected += 1
            gated = suite_of(item.path, self.root, list(GATED))
            if gated is not None and not os.environ.get(GATED[gated][0]):
                variable, command = GATED[gated]
                item.add_marker(
                    pytest.mark.skip(reason=f"{gated} runs with {variable}=1: `{command}`")
                )

    def pytest_collection_finish(self) -> None:
        empty = [suite for suite, tally in self.tallies.items() if tally.collected == 0]
        if empty:
            self.problems.append(f"{EXPECT_VARIABLE}: no test collected in {', '.join(empty)}")

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        if self.problems:  # an expected suite is empty: run nothing, fail
            raise session.Failed(self.problems[0])

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        path = self.root / report.nodeid.split("::")[0]
        suite = suite_of(path, self.root, list(self.tallies))
        if suite is None:
            return
        if report.skipped and not hasattr(report, "wasxfail"):
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
            self.tallies[suite].skipped.append(str(reason))
        elif report.when == "call":
            self.tallies[suite].ran += 1

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        for suite, tally in self.tallies.items():
            if not tally.ran and tally.skipped:
                why = sorted(set(tally.skipped))
                self.problems.append(
                    f"{EXPECT_VARIABLE}: every test in {suite} was skipped ({'; '.join(why)})"
                )
        if self.problems:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.problems:
            terminalreporter.section("expected suites", sep="=", red=True, bold=True)
            for problem in self.problems:
                terminalreporter.line(problem, red=True)


def pytest_configure(config: pytest.Config) -> None:
    expected = expected_suites(os.environ.get(EXPECT_VARIABLE))
    config.pluginmanager.register(SuiteGuard(config.rootpath, expected), "switchboard-suites")

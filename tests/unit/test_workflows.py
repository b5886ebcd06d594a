"""The GitHub Actions workflows keep their rules: every step runs a make target that exists (or
the container bootstrap), actions are pinned by commit SHA, credentials are not kept, every job
has a timeout, the secrets docs/ci-cd.md lists are exactly those the workflows use, and CI is
defined once: the workflow that gates pull requests runs exactly the make targets `.ci/run`
runs."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
BOOTSTRAP = "bash .ci/bootstrap-debian.sh"
OPERATORS = {"|", "||", "&&", ";", "&"}


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([a-zA-Z][\w-]*):", text, re.MULTILINE))


def steps(workflow: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, step) for name, job in workflow["jobs"].items() for step in job.get("steps", [])]


def make_calls(script: str) -> list[str]:
    """The make targets a shell script calls, in order (``make a b | tee x`` → a, b; options
    and VAR=value arguments are not targets)."""
    found: list[str] = []
    for line in script.splitlines():
        words = shlex.split(line.replace(";", " ; "), comments=True)
        calling = False
        for word in words:
            if word in OPERATORS:
                calling = False
            elif Path(word).name == "make":
                calling = True
            elif calling and not word.startswith("-") and "=" not in word:
                found.append(word)
    return found


def gate_workflows() -> list[Path]:
    """The workflows that decide whether a pull request may merge."""
    gates = []
    for path in WORKFLOWS:
        workflow: dict[Any, Any] = load(path)
        triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare on as true
        if "pull_request" in (triggers if isinstance(triggers, dict | list) else [triggers]):
            gates.append(path)
    return gates


def test_make_calls_reads_targets_not_options_or_pipes() -> None:
    script = "#!/bin/bash\n# make nothing\nmake lint\nsudo -E make -j2 test-images X=1 | tee a\n"
    assert make_calls(script + "cd x && make a b; make c\n") == [
        "lint",
        "test-images",
        "a",
        "b",
        "c",
    ]


def test_ci_run_and_the_pull_request_workflow_run_the_same_make_targets() -> None:
    """One definition of CI: what `.ci/run` runs here is what the workflow runs on a pull
    request (in parallel jobs there, one after the other here), nothing more or less."""
    local = make_calls((REPO / ".ci/run").read_text())
    assert local, ".ci/run calls no make target"
    assert len(local) == len(set(local)), f".ci/run calls a target twice: {local}"
    gates = gate_workflows()
    assert [path.name for path in gates] == ["ci.yml"]
    remote = [
        target
        for path in gates
        for _, step in steps(load(path))
        for target in make_calls(step.get("run", ""))
    ]
    assert sorted(local) == sorted(remote), (
        f"only in .ci/run: {sorted(set(local) - set(remote))}; "
        f"only in the workflow: {sorted(set(remote) - set(local))}"
    )
    assert set(local) <= make_targets()


def test_there_are_the_three_workflows() -> None:
    assert {path.name for path in WORKFLOWS} == {"ci.yml", "images.yml", "deploy-dev.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_run_step_is_a_make_target_that_exists(path: Path) -> None:
    targets = make_targets()
    for job, step in steps(load(path)):
        command = step.get("run")
        if command is None:
            continue
        command = (
            command.strip()
            .removeprefix("sudo ")
            .removeprefix("--preserve-env=PIP_EXTRA_INDEX_URL,PATH ")
        )
        if command in (BOOTSTRAP, f"sudo {BOOTSTRAP}"):
            continue
        found = re.match(r"^make ([\w-]+)", command)
        assert found, f"{path.name} {job}: {command!r} is not a make target"
        assert found.group(1) in targets, f"{path.name} {job}: no make target {found.group(1)}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_and_jobs_bounded(path: Path) -> None:
    workflow = load(path)
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in workflow["jobs"].items():
        if "uses" in job:  # a reusable workflow of this repository
            assert job["uses"].startswith("./.github/workflows/")
            continue
        assert isinstance(job.get("timeout-minutes"), int), f"{name}: timeout-minutes"
    for job, step in steps(workflow):
        uses = step.get("uses")
        if uses is None:
            continue
        assert PINNED.match(uses.split(" ")[0]), f"{path.name} {job}: {uses} is not pinned by SHA"
        if uses.startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False


def test_the_documented_secrets_are_exactly_the_used_ones() -> None:
    used = set()
    for path in WORKFLOWS:
        used |= set(re.findall(r"secrets\.([A-Z_]+)", path.read_text()))
    used.discard("GITHUB_TOKEN")  # automatic
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", (REPO / "docs/ci-cd.md").read_text(), re.M))
    assert used == documented
    assert used  # the deploy needs some


def test_pull_requests_are_cancelled_when_superseded_but_deploys_never() -> None:
    ci = load(REPO / ".github/workflows/ci.yml")
    assert ci["concurrency"]["cancel-in-progress"] is True
    deploy = load(REPO / ".github/workflows/deploy-dev.yml")
    assert deploy["concurrency"]["cancel-in-progress"] is False
    assert deploy["jobs"]["deploy"]["environment"] == "dev"

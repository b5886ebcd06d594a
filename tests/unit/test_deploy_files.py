"""The files that deploy Switchboard are valid and point at things that exist."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.support.compose import COMPOSE

BIN = Path(sys.executable).parent
DOCKERFILES = [
    REPO_ROOT / "model-server/cpu/Dockerfile",
    REPO_ROOT / "infra/docker/gateway.Dockerfile",
    REPO_ROOT / "infra/docker/router.Dockerfile",
    *sorted(REPO_ROOT.glob("tests/images/standins/*.Dockerfile")),
]
SHELL_SCRIPTS = [
    *sorted(REPO_ROOT.glob("model-server/**/*.sh")),
    *sorted(REPO_ROOT.glob(".ci/*.sh")),
    *sorted(REPO_ROOT.glob("deploy/*.sh")),
    *sorted(REPO_ROOT.glob("tests/images/standins/*.sh")),
    REPO_ROOT / ".ci/run",
]
COMPOSE_FILE = "docker-compose.prod.yml"
REQUIRED = [
    "SWITCHBOARD_IMAGE_OWNER",
    "SWITCHBOARD_TAG",
    "SWITCHBOARD_PUBLIC_URL",
    "SWITCHBOARD_DOMAIN",
]


def run(*command: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={"PATH": str(BIN), **env},
        timeout=120,
    )


def test_compose_file_is_valid_with_the_example_environment_and_demands_the_rest(
    tmp_path: Path,
) -> None:
    example = "deploy/compose.env.example"
    secrets = {"SWITCHBOARD_SECRETS_DIR": str(tmp_path)}
    for name in (
        "postgres_password",
        "session_secret",
        "metrics_token",
        "vllm_api_key",
        "grafana_admin_password",
    ):
        (tmp_path / name).write_text("x")
    for profile in ("gpu", "cpu"):
        ok = run(
            COMPOSE,
            "-f",
            COMPOSE_FILE,
            "--env-file",
            example,
            "config",
            "-q",
            **secrets,
            COMPOSE_PROFILES=profile,
        )
        assert (ok.returncode, ok.stderr) == (0, ""), ok.stderr
    opt_in = run(
        COMPOSE,
        "-f",
        COMPOSE_FILE,
        "-f",
        "deploy/compose.grafana-port.yml",
        "--env-file",
        example,
        "config",
        "-q",
        **secrets,
    )
    assert (opt_in.returncode, opt_in.stderr) == (0, ""), opt_in.stderr
    lines = (REPO_ROOT / example).read_text().splitlines()
    values = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    for variable in REQUIRED:
        partial = {k: v for k, v in values.items() if k != variable} | secrets
        result = run(COMPOSE, "-f", COMPOSE_FILE, "config", "-q", **partial)
        assert f"required variable {variable} is missing" in result.stderr


def test_compose_points_at_files_that_exist() -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.prod.yml").read_text())
    for name, service in compose["services"].items():
        build = service.get("build")
        if build:
            assert (REPO_ROOT / build["context"] / build["dockerfile"]).is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO_ROOT / source).exists(), f"{name}: {source}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_dockerfiles_pass_hadolint_and_copy_what_exists(dockerfile: Path) -> None:
    result = run(str(BIN / "hadolint"), "--ignore", "DL3008", str(dockerfile))
    assert result.returncode == 0, result.stdout
    # the stand-ins are built with their own folder as the context, the others with the repository
    context = dockerfile.parent if dockerfile.parent.name == "standins" else REPO_ROOT
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY") and "--from" not in line:
            *sources, _target = line.split()[1:]
            for source in sources:
                assert (context / source).exists(), f"{dockerfile.name}: {source}"


def test_shell_scripts_pass_shellcheck() -> None:
    result = run(str(BIN / "shellcheck"), *map(str, SHELL_SCRIPTS))
    assert result.returncode == 0, result.stdout


def test_the_wheel_carries_the_templates(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    command = [uv] if uv else ["python3", "-m", "uv"]  # the Makefile installs one or the other
    result = subprocess.run(
        [*command, "build", "--wheel", "--out-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    wheel = next(tmp_path.glob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "switchboard/templates/base.html" in names
    assert "switchboard/app.py" in names


def test_dockerignore_keeps_what_the_dockerfiles_copy_and_nothing_big() -> None:
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*", "everything is out unless named"
    kept = [rule[1:].rstrip("/") for rule in rules if rule.startswith("!")]
    for dockerfile in DOCKERFILES[:3]:  # the three built with the repository as the context
        for line in dockerfile.read_text().splitlines():
            if line.startswith("COPY") and "--from" not in line:
                for source in line.split()[1:-1]:
                    inside = [k for k in kept if source.rstrip("/") == k or source.startswith(k)]
                    assert inside, f"{dockerfile.name}: {source} is ignored"
    assert not any(k.startswith(("var", ".venv", ".git", "tests")) for k in kept)

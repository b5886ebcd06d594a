"""The three public conformance tools, obtained at test time from their registries (PyPI, npm)
into var/conformance, and run against one side (the gateway or vLLM). A tool that cannot be
obtained fails the run, saying which command failed: never an empty pass.

Each run returns ``{check: status}`` with status ``pass``, ``fail``, ``warn`` or ``skip``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import xml.etree.ElementTree as ET  # our own pytest's JUnit file  # nosec B405
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

TOOLS_DIR = REPO_ROOT / "var" / "conformance"
TRUSTEDROUTER = "trustedrouter-provider-check==0.1.8"
COMPATCANARY = "compatcanary@0.2.2"
COMPATCANARY_PROFILES = ("chat", "modern")
SDK_TEST_PLUGINS = ("pytest==9.2.0", "pytest-asyncio==1.5.0", "inline-snapshot==0.36.1",
                    "dirty-equals==0.11")  # fmt: skip
"""What the SDK's tests import (its own dev group names them unpinned)."""
SDK_TEST_FILES = (
    "tests/api_resources/chat/test_completions.py",
    "tests/api_resources/test_completions.py",
    "tests/api_resources/test_models.py",
    "tests/api_resources/test_responses.py",
    "tests/api_resources/responses",
    "tests/api_resources/test_embeddings.py",
)
"""The endpoints vLLM serves. The other ~8,000 generated tests (files, batches, assistants,
audio, images, vector stores, …) ask for what neither side serves: a 404 on both, 80 s each."""
SDK_MODEL_IDS = ("gpt-6-astra", "gpt-3.5-turbo-instruct", "text-embedding-3-small")
"""The model ids the generated tests send (besides ``model="…"`` keywords), replaced."""
PERF_SAMPLES = 1
"""Tier 6 (advisory: throughput) samples per side; the default 3 adds time and no check."""
TOOL_TIMEOUT = 900.0
"""Seconds one tool run may take on a busy machine before it counts as failed."""
REQUEST_TIMEOUT = 300
"""Seconds one request of compatcanary may take (its default, 30, is short for a busy CPU)."""


@dataclass(frozen=True)
class Side:
    """One endpoint under test: ``base_url`` ends in /v1; ``key`` empty for none."""

    name: str
    base_url: str
    key: str
    model: str


Results = dict[str, str]


def sdk_version() -> str:
    """The openai SDK version uv.lock pins."""
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    return str(next(p["version"] for p in lock["package"] if p["name"] == "openai"))


def _run(command: list[str], what: str) -> subprocess.CompletedProcess[str]:
    """``command``, failing the test with its output when it fails (a tool not obtained)."""
    try:
        done = subprocess.run(  # fixed tool commands  # nosec B603
            command, capture_output=True, text=True, timeout=TOOL_TIMEOUT
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        pytest.fail(f"{what}: {' '.join(command)}: {error}")
    if done.returncode != 0:
        pytest.fail(f"{what}: {' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done


def _uv() -> list[str]:
    found = shutil.which("uv")
    return [found] if found else [sys.executable, "-m", "uv"]


@dataclass(frozen=True)
class Tools:
    """Where the obtained tools are."""

    python: Path
    """A throwaway virtualenv: the SDK from its sdist, its test plugins, trustedrouter."""
    sdk_tests: Path
    """The sdist's unpacked copy, model ids and key made ours."""
    compatcanary: Path


def obtain(model: str) -> Tools:
    """Download and install the three tools (each step skipped when done for these versions)."""
    version = sdk_version()
    root = TOOLS_DIR / f"openai-{version}"
    venv = root / "venv"
    python = venv / "bin" / "python"
    installed = venv / ".installed"
    if not installed.exists():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        _run([*_uv(), "venv", "--seed", "--quiet", str(venv)], "a virtualenv for the tools")
        _run(
            [str(python), "-m", "pip", "download", "--quiet", "--no-deps",
             "--no-binary", ":all:", f"openai=={version}", "-d", str(root)],
            "openai's sdist from PyPI",
        )  # fmt: skip
        sdist = root / f"openai-{version}.tar.gz"
        with tarfile.open(sdist) as archive:
            archive.extractall(root, filter="data")
        _run(
            [*_uv(), "pip", "install", "--quiet", "--python", str(python),
             f"{root / f'openai-{version}'}[aiohttp]", *SDK_TEST_PLUGINS, TRUSTEDROUTER],
            "the SDK, its test plugins and trustedrouter-provider-check from PyPI",
        )  # fmt: skip
        installed.touch()
    sdk_tests = root / f"openai-{version}"
    _make_ours(sdk_tests, model)
    npm_prefix = TOOLS_DIR / COMPATCANARY.replace("@", "-")
    compatcanary = npm_prefix / "node_modules" / ".bin" / "compatcanary"
    if not compatcanary.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("compatcanary needs npm (Node.js 20+): apt-get install nodejs npm")
        _run([npm, "install", "--silent", "--no-save", "--prefix", str(npm_prefix), COMPATCANARY],
             "compatcanary from npm")  # fmt: skip
    return Tools(python=python, sdk_tests=sdk_tests, compatcanary=compatcanary)


def _make_ours(sdk: Path, model: str) -> None:
    """The served model id in the selected tests; the API key from ``TEST_API_KEY`` (the
    generated conftest sends a fixed placeholder)."""
    conftest = sdk / "tests" / "conftest.py"
    text = conftest.read_text()
    placeholder = 'api_key = "My API Key"'  # pragma: allowlist secret
    if placeholder in text:
        ours = 'api_key = os.environ.get("TEST_API_KEY", "My API Key")'
        conftest.write_text(text.replace(placeholder, ours))
    for selected in SDK_TEST_FILES:
        path = sdk / selected
        for file in sorted(path.rglob("test_*.py")) if path.is_dir() else [path]:
            source = file.read_text()
            source = re.sub(r'(\bmodel=)"[^"]*"', rf'\1"{model}"', source)
            for model_id in SDK_MODEL_IDS:
                source = source.replace(f'"{model_id}"', f'"{model}"')
            file.write_text(source)


def _environment(**extra: str) -> dict[str, str]:
    """The tools' environment: ours without the app's settings and any provider key."""
    dropped = ("SWITCHBOARD", "OPENAI", "TR_PROVIDER", "TEST_API", "COVERAGE", "PYTEST")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(dropped)}, **extra}


def run_sdk_tests(tools: Tools, side: Side, out: Path) -> Results:
    """openai-python's generated API tests (strict and loose response validation, sync, async
    and aiohttp clients) against ``side``; one result per test."""
    junit = out / f"openai-{side.name}.xml"
    command = [str(tools.python), "-m", "pytest", "-o", "addopts=", "-p", "no:cacheprovider",
               "-q", "--tb=line", f"--junitxml={junit}", *SDK_TEST_FILES]  # fmt: skip
    env = _environment(TEST_API_BASE_URL=side.base_url, TEST_API_KEY=side.key or "none")
    done = subprocess.run(  # the SDK's own tests  # nosec B603
        command, cwd=tools.sdk_tests, env=env, capture_output=True, text=True, timeout=TOOL_TIMEOUT
    )
    (out / f"openai-{side.name}.log").write_text(done.stdout + done.stderr)
    if not junit.exists():
        pytest.fail(f"openai's tests wrote no report ({done.returncode}):\n{done.stderr[-3000:]}")
    return parse_junit(junit.read_text())


def parse_junit(xml: str) -> Results:
    """``{file::class::test: status}`` from a JUnit XML report."""
    results: Results = {}
    for case in ET.fromstring(xml).iter("testcase"):  # noqa: S314  # our own pytest's  # nosec B314
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        status = "pass"
        for child in case:
            if child.tag in ("failure", "error"):
                status = "fail"
            elif child.tag == "skipped" and status == "pass":
                status = "skip"
        results[name] = status
    return results


def run_trustedrouter(tools: Tools, side: Side, out: Path) -> Results:
    """trustedrouter-provider-check at its highest tier (6) against ``side``."""
    report = out / f"trustedrouter-{side.name}.json"
    command = [str(tools.python.parent / "trustedrouter-provider-check"),
               "--base-url", side.base_url, "--model", side.model, "--tier", "6",
               "--perf-samples", str(PERF_SAMPLES), "--json", str(report)]  # fmt: skip
    env = _environment(**({"TR_PROVIDER_API_KEY": side.key} if side.key else {}))
    done = subprocess.run(  # the tool's own command  # nosec B603
        command, env=env, capture_output=True, text=True, timeout=TOOL_TIMEOUT
    )
    (out / f"trustedrouter-{side.name}.log").write_text(done.stdout + done.stderr)
    if not report.exists():
        pytest.fail(f"trustedrouter wrote no report ({done.returncode}):\n{done.stderr[-3000:]}")
    return parse_trustedrouter(report.read_text())


def parse_trustedrouter(text: str) -> Results:
    return {check["id"]: str(check["status"]).lower() for check in json.loads(text)["checks"]}


def run_compatcanary(tools: Tools, side: Side, out: Path) -> Results:
    """compatcanary with each profile against ``side``; checks named ``profile/probe``."""
    results: Results = {}
    for profile in COMPATCANARY_PROFILES:
        report = out / f"compatcanary-{profile}-{side.name}.json"
        command = [str(tools.compatcanary), "scan", "--base-url", side.base_url,
                   "--model", side.model, "--profile", profile, "--timeout", str(REQUEST_TIMEOUT),
                   "--fail-on", "never", "--format", "json", "--output", str(report)]  # fmt: skip
        env = _environment(**({"OPENAI_API_KEY": side.key} if side.key else {}))
        done = subprocess.run(  # the tool's own command  # nosec B603
            command, env=env, capture_output=True, text=True, timeout=TOOL_TIMEOUT
        )
        if not report.exists():
            pytest.fail(f"compatcanary wrote no report ({done.returncode}):\n{done.stderr[-3000:]}")
        results.update(parse_compatcanary(report.read_text(), profile))
    return results


def parse_compatcanary(text: str, profile: str) -> Results:
    return {f"{profile}/{probe['id']}": probe["status"] for probe in json.loads(text)["results"]}

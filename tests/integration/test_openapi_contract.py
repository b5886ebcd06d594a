"""Schemathesis, every check, over the /v1 operations of the app in front of real vLLM.

Driven through Schemathesis' own CLI (``--checks all``). ``max_tokens_cap`` keeps each generated
request short (a cap is a product setting the gateway applies), so hundreds of generated
requests fit in the suite's time; the cache is off so every case reaches the model server.

No check on response time: a generated prompt (up to 256 long messages) can take half a minute
on the CPU model of a busy 2-core machine. Each request may take up to REQUEST_TIMEOUT, and
Schemathesis reads only the configuration file given here (not a ``schemathesis.toml`` it
would otherwise look for in the working directory and its parents), which sets no limit.
Positive cases leave out the fields whose acceptance depends on the model (schemathesis_hooks.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from switchboard.usage.tables import UsageRecord
from tests.conftest import ARTIFACTS, REPO_ROOT, mint_key_in
from tests.integration.conftest import AppFactory

REQUEST_TIMEOUT = 300
RUN_TIMEOUT = 2400
"""Seconds for the whole Schemathesis run on a busy machine (usually a few minutes)."""


@pytest.mark.timeout(RUN_TIMEOUT + 1200)  # the run, and vLLM's start if this test is the first
def test_v1_conforms_to_its_schema_under_every_check(live_app: AppFactory, tmp_path: Path) -> None:
    app = live_app(max_tokens_cap=4, cache_max_entries=0)
    config = tmp_path / "schemathesis.toml"
    config.write_text("# no max-response-time: see the module's docstring\n")
    secret = app.run(mint_key_in(app.app, "fuzzer", rpm=1_000_000, tpm=1_000_000_000))
    ARTIFACTS.mkdir(exist_ok=True)
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "--config-file",
            str(config),
            "run",
            f"{app.url}/docs/openapi.json",
            "--checks",
            "all",
            "--include-path-regex",
            "^/v1/",
            "--header",
            f"Authorization: Bearer {secret}",
            "--max-examples",
            "30",
            "--workers",
            "2",
            "--seed",
            "20261124",
            "--request-timeout",
            str(REQUEST_TIMEOUT),
            "--report",
            "junit",
            "--report-junit-path",
            str(ARTIFACTS / "schemathesis.xml"),
        ],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        cwd=tmp_path,
        env={
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.integration.schemathesis_hooks",
            "PYTHONPATH": str(REPO_ROOT),
        },
    )
    (ARTIFACTS / "schemathesis.txt").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    summary = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert summary, result.stdout[-2000:]
    assert int(summary.group(1)) == int(summary.group(2)) > 200

    # the generated requests did reach the model: the model server answered some of them
    async def answered() -> int:
        await app.app.state.resources.usage.flush()
        count: int = await UsageRecord.count().where(UsageRecord.status == 200)
        return count

    assert app.run(answered()) >= 20

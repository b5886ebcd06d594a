"""The two sides the conformance suites compare, on the run's one vLLM (the ``model_server``
session fixture, shared with the integration tests):

* the gateway as production runs it (``switchboard serve``, granian) with
  ``SWITCHBOARD_MAX_TOKENS_CAP``, its upstream vLLM behind a seeding proxy;
* vLLM "directly": behind a thin proxy that seeds alike and caps tokens as the gateway does
  (tests/support/token_cap_proxy.py says why both).

The SDK's tests only read the shape of answers and run hundreds of requests: a small cap. The
probes read what the model wrote (a forced tool call, JSON): a cap that lets it finish one.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from switchboard.devstack.model_server import ModelServer
from tests.conformance import comparison
from tests.conformance.tools import (
    COMPATCANARY,
    SDK_TEST_FILES,
    TRUSTEDROUTER,
    Side,
    Tools,
    obtain,
    sdk_version,
)
from tests.conftest import ARTIFACTS, REPO_ROOT
from tests.support.gateway_process import DEADLINE, gateway_process
from tests.support.live import free_port
from tests.support.stack_fixtures import MODEL
from tests.support.waiting import responds, wait_for

SDK_CAP = 16
"""Tokens per answer for the SDK's tests (they check shapes, never content)."""
PROBE_CAP = 96
"""Tokens per answer for the probes: room for the tiny model's forced tool call (~50)."""
SEED = 0
"""The sampling seed of requests that name none, on both sides."""
REPORT = REPO_ROOT / "reports" / "conformance.md"
OUT = ARTIFACTS / "conformance"


@contextlib.contextmanager
def proxy(upstream: str, *options: str) -> Iterator[str]:
    """tests/support/token_cap_proxy.py in front of ``upstream`` (…/v1); yields its /v1 URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.token_cap_proxy", upstream, str(port), *options],
        cwd=REPO_ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: responds(url + "/health"), "the proxy starts", DEADLINE, process=process)
        yield url + "/v1"
    finally:
        process.terminate()
        process.wait(timeout=DEADLINE)


def mint_key(data_dir: Path) -> str:
    """A key of a user whose limits never hold the tools back (``switchboard keys create``)."""
    unlimited = str(10**9)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD")},
        "SWITCHBOARD_DATA_DIR": str(data_dir),
        "SWITCHBOARD_ENVIRONMENT": "test",
        "SWITCHBOARD_DEFAULT_RPM": unlimited,
        "SWITCHBOARD_DEFAULT_TPM": unlimited,
    }
    done = subprocess.run(
        [sys.executable, "-m", "switchboard.cli", "keys", "create", "--user", "conformance",
         "--rpm", unlimited, "--tpm", unlimited],
        env=env, capture_output=True, text=True, check=True, timeout=DEADLINE,
    )  # fmt: skip
    return done.stdout.strip().splitlines()[-1]


@contextlib.contextmanager
def sides(model_server: ModelServer, data_dir: Path, cap: int) -> Iterator[dict[str, Side]]:
    """vLLM directly and the gateway, both capped at ``cap`` tokens and seeded alike."""
    vllm = f"{model_server.url}/v1"
    seed = ("--seed", str(SEED))
    with (
        proxy(vllm, *seed) as seeded,
        proxy(vllm, *seed, "--cap", str(cap)) as direct,
    ):
        key = mint_key(data_dir)
        with gateway_process(
            data_dir, upstream_urls=seeded, default_model=MODEL, max_tokens_cap=cap
        ) as (_, gateway):
            yield {
                "vllm": Side("vllm", direct, "", MODEL),
                "gateway": Side("gateway", f"{gateway}/v1", key, MODEL),
            }


@pytest.fixture(scope="module")
def tools() -> Tools:
    return obtain(MODEL)


@pytest.fixture(scope="module")
def sdk_sides(
    model_server: ModelServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Side]]:
    with sides(model_server, tmp_path_factory.mktemp("conformance-sdk"), SDK_CAP) as both:
        yield both


@pytest.fixture(scope="module")
def probe_sides(
    model_server: ModelServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Side]]:
    with sides(model_server, tmp_path_factory.mktemp("conformance-probes"), PROBE_CAP) as both:
        yield both


@pytest.fixture(scope="module")
def out() -> Path:
    """The tools' raw reports and logs (CI keeps test-artifacts/)."""
    OUT.mkdir(parents=True, exist_ok=True)
    return OUT


@pytest.fixture(scope="module")
def report() -> Iterator[list[comparison.Comparison]]:
    """The tests add their comparisons; reports/conformance.md is written once all ran."""
    done: list[comparison.Comparison] = []
    yield done
    if done:
        REPORT.parent.mkdir(exist_ok=True)
        REPORT.write_text("\n".join(report_lines(done)) + "\n")


def report_lines(comparisons: list[comparison.Comparison]) -> list[str]:
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Conformance: the gateway beside vLLM",
        "",
        f"Written by `make test-conformance` (tests/conformance) on {today}. Model `{MODEL}` on "
        "the run's one vLLM CPU server. Each tool ran against vLLM directly (through a thin "
        "proxy that caps tokens as the gateway does) and through the gateway (granian, "
        "`SWITCHBOARD_MAX_TOKENS_CAP`). Requests that name no `seed` get "
        f"`seed: {SEED}` on both sides, so that what the model writes is the same on both.",
        "",
        f"- openai-python {sdk_version()}'s generated API tests (the sdist's "
        f"tests/api_resources, `TEST_API_BASE_URL`, model ids replaced), {SDK_CAP} tokens;",
        f"- `{TRUSTEDROUTER}` at tier 6 (its highest), {PROBE_CAP} tokens;",
        f"- `{COMPATCANARY}`, profiles `chat` and `modern`, {PROBE_CAP} tokens.",
        "",
        "**The gate:** no check that passes against vLLM directly fails through the gateway "
        "(nor warns, skips or goes missing), apart from the differences named below.",
        "",
        *comparison.summary_table(comparisons),
        "",
    ]
    for each in comparisons:
        lines += [f"## {each.tool}", ""]
        table = comparison.file_table if "openai" in each.tool else comparison.check_table
        lines += [*table(each), ""]
    lines += [
        "## Left out, and why",
        "",
        "- openai-python: only the tests of the endpoints vLLM serves ("
        + ", ".join(f"`{p.removeprefix('tests/api_resources/')}`" for p in SDK_TEST_FILES)
        + "). The other ~8,000 generated tests (files, batches, assistants, audio, images, "
        "vector stores, fine-tuning, …) get a 404 on both sides; they took 80 s per side.",
        "- trustedrouter-provider-check: one tier-6 throughput sample per side (default 3): the "
        "tier is advisory (a benchmark, never a pass) and a capped tiny model cannot be "
        "eligible. `catalog.declared-v2` needs a marketplace catalog URL: skipped on both.",
        "- openai-agents, pydantic-ai and LangChain (named in issue 25's findings): not in "
        "this suite; tests/integration/test_responses_live.py drives the agents SDK through "
        "the gateway.",
    ]
    return lines

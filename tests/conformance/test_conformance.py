"""Public conformance suites, side by side: vLLM directly and through the gateway (issue 25).

Each test runs one tool against both sides and fails when a check that passes against vLLM
does not pass through the gateway (tests/conformance/comparison.py: the gate and the expected
differences). reports/conformance.md gets the table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conformance.comparison import Comparison
from tests.conformance.tools import (
    Results,
    Side,
    Tools,
    run_compatcanary,
    run_sdk_tests,
    run_trustedrouter,
    sdk_version,
)

pytestmark = pytest.mark.integration

Runner = Callable[[Tools, Side, Path], Results]


def compare(tool: str, run: Runner, tools: Tools, sides: dict[str, Side], out: Path) -> Comparison:
    results: dict[str, Results] = {}
    seconds: dict[str, float] = {}
    for name in ("vllm", "gateway"):
        started = time.monotonic()
        results[name] = run(tools, sides[name], out)
        seconds[name] = time.monotonic() - started
    return Comparison(tool, results["vllm"], results["gateway"], seconds)


def check_gate(comparison: Comparison) -> None:
    assert comparison.direct, f"{comparison.tool} reported no check against vLLM"
    assert comparison.gateway, f"{comparison.tool} reported no check through the gateway"
    assert any(status == "pass" for status in comparison.direct.values()), comparison.direct
    failing = {
        check: (comparison.direct[check], comparison.gateway.get(check, "missing"))
        for check in comparison.regressions()
    }
    assert not failing, f"passes against vLLM, not through the gateway: {failing}"


def test_openai_python_api_tests(
    tools: Tools, sdk_sides: dict[str, Side], out: Path, report: list[Comparison]
) -> None:
    comparison = compare(f"openai-python {sdk_version()}", run_sdk_tests, tools, sdk_sides, out)
    report.append(comparison)
    check_gate(comparison)


def test_trustedrouter_provider_check(
    tools: Tools, probe_sides: dict[str, Side], out: Path, report: list[Comparison]
) -> None:
    comparison = compare("trustedrouter-provider-check", run_trustedrouter, tools, probe_sides, out)
    report.append(comparison)
    check_gate(comparison)


def test_compatcanary(
    tools: Tools, probe_sides: dict[str, Side], out: Path, report: list[Comparison]
) -> None:
    comparison = compare("compatcanary", run_compatcanary, tools, probe_sides, out)
    report.append(comparison)
    check_gate(comparison)

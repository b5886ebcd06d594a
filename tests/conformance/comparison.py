"""One tool's results on both sides, the gate over them, and the side-by-side report.

The gate: a check that passes against vLLM directly passes through the gateway too. A check
where the gateway differs on purpose is named in ``EXPECTED`` with the status it gets and why;
any other difference from a vLLM pass (fail, warn, skip, or missing) is a regression.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from tests.conformance.tools import Results

EXPECTED: dict[tuple[str, str], tuple[str, str]] = {
    ("trustedrouter-provider-check", "chat.forwarded-fields"): (
        "warn",
        "the gateway answers `thinking` and `reasoning` on chat completions with a 400 "
        "`unknown_parameter`, as OpenAI does (ADR 0010: no published chat field); vLLM ignores "
        "them. The tool itself rates this advisory (OpenAI answers 400 too).",
    ),
}
"""(tool, check) → (the gateway's status, why it differs from vLLM's pass)."""


@dataclass
class Comparison:
    tool: str
    direct: Results
    gateway: Results
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time of the tool's run per side (for the report, never asserted)."""

    def regressions(self) -> list[str]:
        """Checks that pass against vLLM directly and not through the gateway (unexpectedly)."""
        found = []
        for check, status in sorted(self.direct.items()):
            through = self.gateway.get(check, "missing")
            if status != "pass" or through == "pass":
                continue
            expected = EXPECTED.get((self.tool, check))
            if expected is None or expected[0] != through:
                found.append(check)
        return found

    def differences(self) -> list[tuple[str, str, str]]:
        """(check, vLLM's status, the gateway's) wherever they differ."""
        names = sorted(set(self.direct) | set(self.gateway))
        rows = [(n, self.direct.get(n, "missing"), self.gateway.get(n, "missing")) for n in names]
        return [row for row in rows if row[1] != row[2]]

    def counts(self) -> dict[str, int]:
        names = set(self.direct) | set(self.gateway)
        both = {n for n in names if self.direct.get(n) == "pass" == self.gateway.get(n)}
        return {
            "checks": len(names),
            "vllm": sum(s == "pass" for s in self.direct.values()),
            "gateway": sum(s == "pass" for s in self.gateway.values()),
            "both": len(both),
            "only_gateway": sum(
                self.gateway.get(n) == "pass" and self.direct.get(n) != "pass" for n in names
            ),
            "regressions": len(self.regressions()),
        }


def _cell(status: str) -> str:
    return {"pass": "✅ pass", "fail": "❌ fail", "warn": "⚠️ warn"}.get(status, status)


def summary_table(comparisons: list[Comparison]) -> list[str]:
    lines = [
        "| Tool | Checks | Pass on vLLM | Pass through the gateway | Pass on both | "
        "Only through the gateway | vLLM pass, gateway not (gate) | Seconds (vLLM / gateway) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for each in comparisons:
        c = each.counts()
        seconds = " / ".join(f"{each.seconds.get(s, 0):.0f}" for s in ("vllm", "gateway"))
        lines.append(
            f"| {each.tool} | {c['checks']} | {c['vllm']} | {c['gateway']} | {c['both']} | "
            f"{c['only_gateway']} | {c['regressions']} | {seconds} |"
        )
    return lines


def check_table(comparison: Comparison) -> list[str]:
    """Every check of a tool with few checks, side by side."""
    lines = ["| Check | vLLM directly | Through the gateway | Note |", "|---|---|---|---|"]
    for name in sorted(set(comparison.direct) | set(comparison.gateway)):
        direct = comparison.direct.get(name, "missing")
        through = comparison.gateway.get(name, "missing")
        note = ""
        if (comparison.tool, name) in EXPECTED and direct != through:
            note = EXPECTED[(comparison.tool, name)][1]
        elif name in comparison.regressions():
            note = "**regression**"
        lines.append(f"| `{name}` | {_cell(direct)} | {_cell(through)} | {note} |")
    return lines


def file_table(comparison: Comparison) -> list[str]:
    """Tests grouped by file (the SDK's generated tests: hundreds), then every difference."""
    per_file: dict[str, Counter[str]] = {}
    for name in set(comparison.direct) | set(comparison.gateway):
        module = name.split("::")[0].removeprefix("tests.api_resources.")
        counts = per_file.setdefault(str(PurePosixPath(module)), Counter())
        counts["tests"] += 1
        counts["vllm"] += comparison.direct.get(name) == "pass"
        counts["gateway"] += comparison.gateway.get(name) == "pass"
        counts["regressions"] += name in comparison.regressions()
    lines = [
        "| Tests in | Tests | Pass on vLLM | Pass through the gateway | vLLM pass, gateway not |",
        "|---|---:|---:|---:|---:|",
    ]
    for module, counts in sorted(per_file.items()):
        lines.append(
            f"| `{module}` | {counts['tests']} | {counts['vllm']} | {counts['gateway']} | "
            f"{counts['regressions']} |"
        )
    differences = comparison.differences()
    if differences:
        lines += ["", "Tests whose result differs:", ""]
        lines += ["| Test | vLLM directly | Through the gateway |", "|---|---|---|"]
        lines += [f"| `{n}` | {_cell(d)} | {_cell(g)} |" for n, d, g in differences]
    return lines

"""``make quality-report``: docs/quality-report.md from real outputs, never typed by hand.

- **Run here:** lint, types, security scans and the workflow linters are run now. The unit tests
  are run now too, for unit-only coverage.
- **Read from artifacts:** the whole suite's results (`make test`: test-artifacts/junit.xml and
  coverage.xml), Schemathesis' summary, the benchmark and load-test results (as `make
  load-report` keeps them in docs/load-testing/), and the image sizes (`make test-images`).
- **What is missing** is named, with the target that produces it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
ARTIFACTS = ROOT / "test-artifacts"
REPORTS = ROOT / "docs" / "load-testing"
"""The benchmarks' and load tests' results, as `make load-report` keeps them beside its page."""
DOC = ROOT / "docs" / "quality-report.md"
PYTHON_TREES = ["src", "tests", "loadtests", "model-server", "grafana", "tools"]


def run(*command: str, timeout: float = 900) -> tuple[int, str]:
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)  # noqa: S603  # nosec B603
    return done.returncode, done.stdout + done.stderr


def checks() -> list[str]:
    results = []
    for name, command in [
        ("ruff check", [str(BIN / "ruff"), "check", *PYTHON_TREES]),
        ("ruff format", [str(BIN / "ruff"), "format", "--check", *PYTHON_TREES]),
        ("mypy --strict (src, tests, loadtests, tools, grafana)", [str(BIN / "mypy")]),
        ("import layers (import-linter)", [str(BIN / "lint-imports"), "--no-cache"]),
        ("docs' references", [str(BIN / "python"), "tools/check_docs.py"]),
        (
            "bandit (src)",
            [
                str(BIN / "bandit"),
                "-q",
                "-r",
                "src",
                "-c",
                "pyproject.toml",
                "-f",
                "json",
                "-o",
                str(ARTIFACTS / "bandit.json"),
            ],
        ),
        (
            "actionlint",
            [
                str(BIN / "actionlint"),
                "-shellcheck",
                str(BIN / "shellcheck"),
                *map(str, sorted((ROOT / ".github/workflows").glob("*.yml"))),
            ],
        ),
        (
            "zizmor",
            [str(BIN / "zizmor"), "--offline", "--min-severity", "low", ".github/workflows"],
        ),
    ]:
        started = time.monotonic()
        status, output = run(*command)
        detail = ""
        if name.startswith("bandit"):
            found_issues = json.loads((ARTIFACTS / "bandit.json").read_text())
            lines = found_issues["metrics"]["_totals"]["loc"]
            detail = f"{len(found_issues['results'])} findings in {lines:,} lines"
        elif name.startswith("mypy"):
            found = re.search(
                r"Success: no issues found in (\d+) source files|Found (\d+) error", output
            )
            detail = found.group(0) if found else ""
        results.append(
            f"| {name} | {'pass' if status == 0 else '**fail**'} | {detail} | "
            f"{time.monotonic() - started:.1f} s |"
        )
    status, output = run(
        "bash",
        "-c",
        "git ls-files -z | xargs -0 .venv/bin/detect-secrets-hook --baseline .secrets.baseline",
    )
    reviewed = len(json.loads((ROOT / ".secrets.baseline").read_text())["results"])
    results.append(
        f"| detect-secrets | {'pass' if status == 0 else '**fail**'} | "
        f"{reviewed} files with reviewed, non-secret findings in the baseline | |"
    )
    return ["| check | result | detail | time |", "|---|---|---|---|", *results]


def tests_section() -> list[str]:
    junit = ARTIFACTS / "junit.xml"
    if not junit.exists():
        return ["Not run yet: `make test` writes test-artifacts/junit.xml."]
    counts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for case in ET.parse(junit).getroot().iter("testcase"):  # noqa: S314  # nosec B314
        kind = (
            (case.get("classname") or "").split(".")[1]
            if "." in (case.get("classname") or "")
            else "other"
        )
        row = counts[kind]
        row["tests"] += 1
        row["seconds"] += float(case.get("time") or 0)
        outcome = next(
            (child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed"
        )
        row[outcome] += 1
    lines = [
        "| kind | tests | passed | failed | errors | skipped | time |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind in sorted(counts):
        row = counts[kind]
        lines.append(
            f"| {kind} | {row['tests']:.0f} | {row['passed']:.0f} | {row['failure']:.0f} | "
            f"{row['error']:.0f} | {row['skipped']:.0f} | {row['seconds'] / 60:.1f} min |"
        )
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(junit.stat().st_mtime))
    return [f"From `make test` at {stamp} (test-artifacts/junit.xml).", "", *lines]


def coverage_section() -> list[str]:
    lines = ["| scope | lines | branches |", "|---|---|---|"]
    status, _ = run(
        str(BIN / "pytest"),
        "tests/unit",
        "-q",
        "-p",
        "no:cacheprovider",
        "--cov",
        "--cov-report=xml:test-artifacts/coverage-unit.xml",
        "--cov-fail-under=0",
        timeout=1800,
    )
    for label, path in (
        ("unit tests only (run now)", ARTIFACTS / "coverage-unit.xml"),
        ("whole suite (`make test`)", ARTIFACTS / "coverage.xml"),
    ):
        if not path.exists():
            lines.append(f"| {label} | not run | |")
            continue
        root = ET.parse(path).getroot()  # noqa: S314  # nosec B314
        lines.append(
            f"| {label} | {float(root.get('line-rate', 0)):.1%} | "
            f"{float(root.get('branch-rate', 0)):.1%} |"
        )
    if status != 0:
        lines.append("\nThe unit run for this table failed: see `make test-unit`.")
    return lines


def read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def other_outputs() -> list[str]:
    lines = []
    schemathesis = ARTIFACTS / "schemathesis.txt"
    found = (
        re.search(r"(\d+) generated, (\d+) passed[^\n]*", schemathesis.read_text())
        if schemathesis.exists()
        else None
    )
    summary = found.group(0) if found else "not run (`make test`)"
    lines.append(f"- **Schemathesis over `/v1`** (all checks): {summary}.")
    bench = read_json(REPORTS / "bench-gateway.json")
    if bench:
        for name, figures in bench["summary"].items():
            if isinstance(figures, dict):
                lines.append(
                    f"- **{name}**: added p50 {figures['added_p50_ms']} ms, "
                    f"p99 {figures['added_p99_ms']} ms sequential; "
                    f"{figures['ratio_to_bare_c32']:.0%} of the bare proxy's req/s at 32."
                )
    else:
        lines.append("- Gateway benchmark: not run (`make bench-gateway`).")
    model = read_json(REPORTS / "bench-model.json")
    if model:
        shares = ", ".join(f"{share:.1%}" for share in model["gateway_share"])
        levels = "/".join(str(row["streams"]) for row in model["direct"])
        lines.append(
            f"- **Model tier** through the gateway keeps {shares} of direct tokens/s "
            f"at {levels} streams."
        )
    else:
        lines.append("- Model benchmark: not run (`make bench-model`).")
    sweep = read_json(REPORTS / "loadtest-sweep.json")
    if sweep:
        slo, users = sweep["slo_ttft_p95_s"], sweep["max_users_within_slo"]
        lines.append(f"- **Chat users within the SLO** (p95 TTFT <= {slo} s): {users}.")
    else:
        lines.append("- Load sweep: not run (`make loadtest-sweep`).")
    sizes = ARTIFACTS / "images" / "sizes.txt"
    lines.append(
        "- **Image sizes** (`make test-images`):"
        if sizes.exists()
        else "- Image sizes: not measured (`make test-images`)."
    )
    if sizes.exists():
        lines += [
            f"  - {line.strip()}" for line in sizes.read_text().splitlines()[1:] if line.strip()
        ]
    lines.append(
        "\nDetails: [load-testing.md](load-testing.md), [infrastructure.md](infrastructure.md)."
    )
    return lines


def main() -> int:
    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    notes = (ROOT / "tools" / "quality-notes.md").read_text().strip()
    parts = [
        "# Quality report",
        "",
        f"Generated by `make quality-report` on {now} from real outputs; do not edit by hand "
        "(the prose is in tools/quality-notes.md).",
        "",
        "## Tests by kind",
        "",
        *tests_section(),
        "",
        "## Coverage",
        "",
        *coverage_section(),
        "",
        "## Lint, types and security scans (run now)",
        "",
        *checks(),
        "",
        "## Contract, performance and images",
        "",
        *other_outputs(),
        "",
        notes,
        "",
    ]
    DOC.write_text("\n".join(parts))
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

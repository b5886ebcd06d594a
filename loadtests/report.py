"""``make load-report``: docs/load-testing.md from what the benchmarks and load tests wrote into
``reports/`` (never typed by hand). Their JSON and plots are kept beside the page, in
docs/load-testing/, so that a part not run again is reported from its last run (in a fresh
clone too); a part never run says which make target produces it."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from loadtests.common import REPORTS

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "load-testing.md"
ASSETS = ROOT / "docs" / "load-testing"
TARGETS = {"added_p50_ms": 1.0, "added_p99_ms": 2.5, "ratio_to_bare_c32": 0.70}
"""Issue 20's targets; streamed responses need 60 % of the bare proxy (``SSE_RATIO``)."""
SSE_RATIO = 0.60


def archived(name: str) -> Path | None:
    """The newest copy of a report file: a new run's (kept beside the page), else the last."""
    fresh, kept = REPORTS / name, ASSETS / name
    if fresh.exists():
        ASSETS.mkdir(parents=True, exist_ok=True)
        shutil.copy(fresh, kept)
    return kept if kept.exists() else None


def load(name: str) -> dict[str, Any] | None:
    path = archived(f"{name}.json")
    return json.loads(path.read_text()) if path else None


def picture(name: str, alt: str) -> str:
    return f"\n![{alt}](load-testing/{name})\n" if archived(name) else ""


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def gateway_section(report: dict[str, Any] | None) -> list[str]:
    if report is None:
        return ["Not run yet: `make bench-gateway`."]
    lines = [
        f"Run {report['started']} on {report['cpus']} cores; {report['cores']}. "
        f"{report['duration']} per load level, wrk, an instant fake upstream. "
        + (
            f"1-minute load average {report['load_average_before']} before the run and "
            f"{report['load_average_after']} after it"
            if "load_average_before" in report
            else "The machine's load was not recorded for this run (it ran beside a vLLM server "
            "and image builds)"
        )
        + ": other work on the cores lowers req/s and raises latency; the server's CPU µs per "
        "request barely moves with it, so compare that between runs.",
        "",
        *in_turn_note(report),
        "| server | kind | sequential p50 ms | sequential p99 ms | req/s at 32 | req/s at 64 | "
        "server CPU µs per request at 32 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("direct", "bare_proxy", "gateway", "gateway_2_workers_redis"):
        for kind in ("json", "sse"):
            if name in report:
                row = report[name][kind]
                lines.append(
                    f"| {name} | {kind} | {row['sequential']['p50_ms']:.2f} | "
                    f"{row['sequential']['p99_ms']:.2f} | {row['c32']['requests_per_s']:,.0f} | "
                    f"{row['c64']['requests_per_s']:,.0f} | "
                    f"{row['c32'].get('cpu_us_per_request', '—')} |"
                )
    lines += ["", "| target | measured | threshold | |", "|---|---|---|---|"]
    for name, figures in report["summary"].items():
        lines += summary_rows(name, figures)
    lines.append(picture("bench-gateway.png", "gateway benchmark"))
    return lines + profile_lines(report)


PROFILED = ("bare_proxy", "gateway")
"""The servers py-spy samples at one connection."""


def profile_lines(report: dict[str, Any]) -> list[str]:
    """Where each profiled server's time goes at one connection (loadtests/flame.py)."""
    profiles = {name: report.get(name, {}).get("profile_c1") for name in PROFILED}
    profiles = {name: found for name, found in profiles.items() if found}
    if not profiles:
        return []
    first = next(iter(profiles.values()))
    rows = sorted(
        {category for found in profiles.values() for category in found["shares"]},
        key=lambda category: -max(found["shares"].get(category, 0) for found in profiles.values()),
    )
    header = " | ".join(
        f"{name} ({found['samples']:,} samples)" for name, found in profiles.items()
    )
    lines = [
        "",
        f"### Where the time goes at one connection (py-spy, {first['seconds']} s each)",
        "",
        "Sampled thread time per request in µs, and its share of the server's busy samples "
        "(loadtests/flame.py says what each row holds; a package is the code the app's thread "
        "was running; threads that run at once both count, so a column can exceed the "
        "latency):",
        "",
        f"| | {header} |",
        "|---|" + "---|" * len(profiles),
    ]
    for category in rows:
        if max(found["shares"].get(category, 0) for found in profiles.values()) >= 0.005:
            cells = [
                f"{found.get('us_per_request', {}).get(category, 0)} µs "
                f"({100 * found['shares'].get(category, 0):.1f} %)"
                for found in profiles.values()
            ]
            lines.append(f"| {category} | " + " | ".join(cells) + " |")
    links = [
        f"[{name}](load-testing/{found['flamegraph']})"
        for name, found in profiles.items()
        if archived(found["flamegraph"])
    ]
    if links:
        lines += ["", "Flame graphs: " + ", ".join(links) + "."]
    return lines


def in_turn_note(report: dict[str, Any]) -> list[str]:
    rounds = report.get("gateway", {}).get("json", {}).get("sequential", {}).get("rounds")
    if not rounds:
        return []
    return [
        f"Sequential figures of direct, the bare proxy and the one-worker gateway: the median "
        f"of {len(rounds)} rounds taken in turn ({report['duration']} each), so that the three "
        "are compared within the same minutes; the 2-worker run's are one run each.",
        "",
        *(
            [
                "The one-worker gateway's ratio to the bare proxy at 32 connections is the "
                f"median of the ratios of {len(in_turn['rounds'])} rounds, the two in turn; "
                "`ratio_to_bare_c32_apart` is the ratio of the two runs in the table, minutes "
                "apart. The table's req/s and CPU µs per request come from those runs.",
                "",
            ]
            if (in_turn := report.get("gateway", {}).get("json", {}).get("c32_in_turn"))
            else []
        ),
    ]


def summary_rows(name: str, figures: Any) -> list[str]:
    """One summary figure of bench-gateway as table rows (target and verdict where it has one)."""
    if name.endswith("_ttft_added_ms"):
        return [f"| {name} (paced upstream, median of 15) | {figures:.2f} ms | — | |"]
    if name.endswith("_rss_growth_percent"):
        return [f"| {name} (soak) | {figures:.2f} % | < 5 % | {verdict(figures < 5.0)} |"]
    if name.startswith("two_workers"):
        return [f"| {name} | {figures:.2f} times | — | |"]
    if name.endswith("_rss"):
        growth = figures["burst_growth_percent"]
        return [
            f"| {name} idle / after the soak / after a burst and rest | {figures['idle_mb']} / "
            f"{figures['after_soak_mb']} / {figures['after_burst_and_rest_mb']} MB | — | |",
            f"| {name} growth after a burst and rest | {growth:.2f} % | <= 5 % | "
            f"{verdict(growth <= 5.0)} |",
        ]
    if name.endswith("_max_rps_p99_under_50ms"):
        shown = f"{figures['gateway']:,.0f} req/s (bare proxy {figures['bare_proxy']:,.0f})"
        ratio = f"{figures['ratio']:.0%}" if figures["ratio"] is not None else "—"
        return [f"| {name} | {shown} | ratio {ratio} | |"]
    if name.endswith("_long_streams_without_stall"):
        shown = (
            f"{figures['gateway']} of {figures['of']} (bare proxy {figures['bare_proxy']}, "
            f"direct {figures['direct']})"
        )
        return [f"| {name} (no gap over 100 ms) | {shown} | — | |"]
    rows = []
    if "ratio_to_bare_c32_apart" in figures:
        apart = figures["ratio_to_bare_c32_apart"]
        rows.append(f"| {name} ratio_to_bare_c32_apart (runs minutes apart) | {apart:.0%} | — | |")
    if "ratio_to_heap_tuned_bare_c32" in figures:
        like = figures["ratio_to_heap_tuned_bare_c32"]
        rows.append(
            f"| {name} ratio_to_heap_tuned_bare_c32 (the bare proxy with web/heap.py's collector "
            f"settings, in turn) | {like:.0%} | — | |"
        )
    if "over_bare_p50_ms" in figures:
        over = f"{figures['over_bare_p50_ms']:+.2f} ms / {figures['over_bare_p99_ms']:+.2f} ms"
        rows.append(
            f"| {name} added p50 / p99 over the bare proxy (at one connection, the median of "
            f"the rounds' differences) | {over} | — | |"
        )
    for metric, limit in TARGETS.items():
        if metric == "ratio_to_bare_c32" and name.endswith("_sse"):
            limit = SSE_RATIO
        value = figures[metric]
        ok = value >= limit if metric.startswith("ratio") else value <= limit
        shown = f"{value:.0%}" if metric.startswith("ratio") else f"{value:.2f} ms"
        bound = f">= {limit:.0%}" if metric.startswith("ratio") else f"<= {limit} ms"
        rows.append(f"| {name} {metric} | {shown} | {bound} | {verdict(ok)} |")
    return rows


def model_section(report: dict[str, Any] | None) -> list[str]:
    if report is None:
        return ["Not run yet: `make bench-model`."]
    lines = [
        f"CPU: {report['cpu']}. {report['seconds_per_level']:.0f} s per level, "
        f"{report['max_tokens']} tokens per answer (`ignore_eos`).",
        "",
        "| streams | direct tok/s | gateway tok/s | share | TTFT p50/p95 direct (s) | "
        "TTFT p50/p95 gateway (s) | ITL p50 direct/gateway (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for direct, gateway, share in zip(
        report["direct"], report["gateway"], report["gateway_share"], strict=True
    ):
        lines.append(
            f"| {direct['streams']} | {direct['output_tokens_per_s']} | "
            f"{gateway['output_tokens_per_s']} | {share:.1%} ({verdict(share >= 0.97)}) | "
            f"{direct['ttft_p50_s']} / {direct['ttft_p95_s']} | "
            f"{gateway['ttft_p50_s']} / {gateway['ttft_p95_s']} | "
            f"{direct['itl_p50_ms']} / {gateway['itl_p50_ms']} |"
        )
    lines.append(picture("bench-model.png", "model benchmark"))
    return lines


def loadtest_section(run: dict[str, Any] | None) -> list[str]:
    if run is None:
        return ["Not run yet: `make loadtest`."]
    lines = [
        f"{run['users']} users for {run['duration']}, every scenario of `loadtests/locustfile.py`.",
        "",
        "| request | count | failures | p50 ms | p95 ms | p99 ms | req/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in run["stats"].items():
        lines.append(
            f"| {name} | {row['Request Count']} | {row['Failure Count']} | {row['50%']} | "
            f"{row['95%']} | {row['99%']} | {float(row['Requests/s']):.2f} |"
        )
    lines.append(picture("loadtest.png", "load test history"))
    return lines


def sweep_section(sweep: dict[str, Any] | None) -> list[str]:
    if sweep is None:
        return ["Not run yet: `make loadtest-sweep`."]
    lines = [
        f"Browser users only, {sweep['duration']} per level. SLO: p95 time to first token "
        f"<= {sweep['slo_ttft_p95_s']} s. **At most {sweep['max_users_within_slo']} people "
        "chatting at once stay within it on this box.**",
        "",
        "| users | TTFT p50 s | TTFT p95 s | answers | req/s | failures |",
        "|---|---|---|---|---|---|",
    ]
    for row in sweep["levels"]:
        lines.append(
            f"| {row['users']} | {row['ttft_p50_s']:.2f} | {row['ttft_p95_s']:.2f} | "
            f"{row['answers']} | {row['requests_per_s']:.2f} | {row['failures']} |"
        )
    lines.append(picture("loadtest-sweep.png", "chat users against the SLO"))
    return lines


def main() -> int:
    notes = (ROOT / "loadtests" / "report-notes.md").read_text()
    parts = [
        "# Load testing and performance",
        "",
        "Generated by `make load-report` from `reports/` (written by `make bench-gateway`, "
        "`make bench-model`, `make loadtest` and `make loadtest-sweep`; each run's JSON and "
        "plot are kept in `docs/load-testing/`, so a part not run again shows its last run); "
        "do not edit by hand: the prose lives in `loadtests/report-notes.md`.",
        "",
        "## Gateway overhead (`make bench-gateway`)",
        "",
        *gateway_section(load("bench-gateway")),
        "",
        "## The model tier directly and through the gateway (`make bench-model`)",
        "",
        *model_section(load("bench-model")),
        "",
        "## Mixed load (`make loadtest`)",
        "",
        *loadtest_section(load("loadtest")),
        "",
        "## How many people chat at once (`make loadtest-sweep`)",
        "",
        *sweep_section(load("loadtest-sweep")),
        "",
        notes.strip(),
        "",
    ]
    DOC.write_text("\n".join(parts))
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

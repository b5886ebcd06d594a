"""The benchmark's summary (``make bench-gateway``): every figure as a ratio to the bare proxy or
against the direct upstream, and its table."""

from __future__ import annotations

import json
import statistics
from typing import Any


def in_turn_ratio(ours: dict[str, Any], bare: dict[str, Any]) -> float | None:
    """The median of the per-round ratios at 32 connections, when the rounds were taken in
    turn with the bare proxy (the one-worker gateway's)."""
    if "c32_in_turn" not in ours or "c32_in_turn" not in bare:
        return None
    pairs = zip(ours["c32_in_turn"]["rounds"], bare["c32_in_turn"]["rounds"], strict=True)
    return float(statistics.median(mine / floor for mine, floor in pairs))


def over_bare_in_turn(ours: dict[str, Any], bare: dict[str, Any]) -> dict[str, float] | None:
    """At one connection, the median over the rounds taken in turn of this server's p50 and p99
    less the bare proxy's in the same round (None without rounds): what the gateway adds to
    the framework's floor, with the minutes' noise taken out of it."""
    if "rounds" not in ours or "rounds" not in bare:
        return None
    pairs = list(zip(ours["rounds"], bare["rounds"], strict=True))
    return {
        quantile: float(
            statistics.median(mine[quantile] - floor[quantile] for mine, floor in pairs)
        )
        for quantile in ("p50_ms", "p99_ms")
    }


def summarise(report: dict[str, Any]) -> None:
    """Targets: added p50 <= 1 ms and p99 <= 2.5 ms sequential; >= 70 % of the bare proxy at 32
    connections; RSS growth < 5 % over the soak."""
    direct, bare = report["direct"], report["bare_proxy"]
    summary: dict[str, Any] = {}
    errors = 0
    for name in ("gateway", "gateway_2_workers_redis"):
        if name not in report:
            continue
        run = report[name]
        for kind in ("json", "sse"):
            seq, base = run[kind]["sequential"], direct[kind]["sequential"]
            apart = run[kind]["c32"]["requests_per_s"] / bare[kind]["c32"]["requests_per_s"]
            in_turn = in_turn_ratio(run[kind], bare[kind])
            summary[f"{name}_{kind}"] = {
                "added_p50_ms": round(seq["p50_ms"] - base["p50_ms"], 3),
                "added_p99_ms": round(seq["p99_ms"] - base["p99_ms"], 3),
                "ratio_to_bare_c32": round(apart if in_turn is None else in_turn, 3),
                "ratio_to_bare_c32_apart": round(apart, 3),
                "ratio_to_bare_c64": round(
                    run[kind]["c64"]["requests_per_s"] / bare[kind]["c64"]["requests_per_s"], 3
                ),
            }
            if (over := over_bare_in_turn(seq, bare[kind]["sequential"])) is not None:
                summary[f"{name}_{kind}"]["over_bare_p50_ms"] = round(over["p50_ms"], 3)
                summary[f"{name}_{kind}"]["over_bare_p99_ms"] = round(over["p99_ms"], 3)
            tuned = report.get("bare_proxy_heap_tuned", {}).get(kind)
            if tuned and (like := in_turn_ratio(run[kind], tuned)) is not None:
                summary[f"{name}_{kind}"]["ratio_to_heap_tuned_bare_c32"] = round(like, 3)
            errors += sum(run[kind][load]["errors"] for load in ("sequential", "c32", "c64"))
        rss = run["rss"]
        summary[f"{name}_rss_growth_percent"] = round(rss["growth_percent"], 2)
        if "rss_after_burst_and_rest_mb" in rss:
            summary[f"{name}_rss"] = {
                "idle_mb": round(rss["idle_mb"], 1),
                "after_soak_mb": round(rss["rss_after_mb"], 1),
                "after_burst_and_rest_mb": round(rss["rss_after_burst_and_rest_mb"], 1),
                "burst_growth_percent": round(
                    100 * (rss["rss_after_burst_and_rest_mb"] / rss["rss_after_mb"] - 1), 2
                ),
            }
        if "capacity" in run["json"] and "capacity" in bare["json"]:
            ours = run["json"]["capacity"]["max_rps_p99_under_50ms"]
            floor = bare["json"]["capacity"]["max_rps_p99_under_50ms"]
            ratio = round(ours / floor, 3) if floor else None
            summary[f"{name}_max_rps_p99_under_50ms"] = {
                "gateway": ours,
                "bare_proxy": floor,
                "ratio": ratio,
            }
        if "long_streams" in run:
            summary[f"{name}_long_streams_without_stall"] = {
                "gateway": run["long_streams"]["without_stall"],
                "bare_proxy": bare.get("long_streams", {}).get("without_stall"),
                "direct": direct.get("long_streams", {}).get("without_stall"),
                "of": run["long_streams"]["streams"],
            }
        summary[f"{name}_ttft_added_ms"] = round(run["ttft_ms"] - direct["ttft_ms"], 2)
    summary["bare_proxy_ttft_added_ms"] = round(bare["ttft_ms"] - direct["ttft_ms"], 2)
    if "gateway" in report and "gateway_2_workers_redis" in report:
        one, two = (
            report["gateway"]["json"]["c32"],
            report["gateway_2_workers_redis"]["json"]["c32"],
        )
        summary["two_workers_over_one_c32_json"] = round(
            two["requests_per_s"] / one["requests_per_s"], 3
        )
    report["summary"] = summary
    report["errors"] = errors


def table(report: dict[str, Any]) -> str:
    lines = [
        f"{'server':26} {'kind':5} {'seq p50':>8} {'seq p99':>8} {'c32 req/s':>10} "
        f"{'c64 req/s':>10}"
    ]
    for name in ("direct", "bare_proxy", "gateway", "gateway_2_workers_redis"):
        for kind in ("json", "sse"):
            if name in report:
                row = report[name][kind]
                lines.append(
                    f"{name:26} {kind:5} {row['sequential']['p50_ms']:>8.2f} "
                    f"{row['sequential']['p99_ms']:>8.2f} {row['c32']['requests_per_s']:>10.0f} "
                    f"{row['c64']['requests_per_s']:>10.0f}"
                )
    lines.append(json.dumps(report["summary"], indent=2))
    return "\n".join(lines)

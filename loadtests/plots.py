"""PNG plots of the benchmark and load-test results (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

SERVERS = ("direct", "bare_proxy", "gateway", "gateway_2_workers_redis")
LABELS = {
    "direct": "fake upstream",
    "bare_proxy": "bare Litestar proxy",
    "gateway": "gateway (1 worker)",
    "gateway_2_workers_redis": "gateway (2 workers, Redis)",
}


def plot_gateway(report: dict[str, Any], path: Path) -> None:
    """Throughput at 32 and 64 connections, and sequential latency, per server and kind."""
    servers = [name for name in SERVERS if name in report]
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    width = 0.2
    for offset, (kind, load) in enumerate(
        [("json", "c32"), ("json", "c64"), ("sse", "c32"), ("sse", "c64")]
    ):
        values = [report[name][kind][load]["requests_per_s"] for name in servers]
        positions = [index + (offset - 1.5) * width for index in range(len(servers))]
        left.bar(positions, values, width, label=f"{kind.upper()} · {load[1:]} connections")
    left.set_yscale("log")
    left.set_xticks(range(len(servers)), [LABELS[name] for name in servers], rotation=12)
    left.set_ylabel("requests per second (log)")
    left.set_title("Throughput")
    left.legend(fontsize=8)
    for offset, (kind, quantile) in enumerate(
        [("json", "p50_ms"), ("json", "p99_ms"), ("sse", "p50_ms"), ("sse", "p99_ms")]
    ):
        values = [report[name][kind]["sequential"][quantile] for name in servers]
        positions = [index + (offset - 1.5) * width for index in range(len(servers))]
        right.bar(positions, values, width, label=f"{kind.upper()} {quantile[:3]}")
    right.set_xticks(range(len(servers)), [LABELS[name] for name in servers], rotation=12)
    right.set_ylabel("milliseconds")
    right.set_title("Latency, one connection")
    right.legend(fontsize=8)
    figure.suptitle(f"Gateway overhead against an instant upstream ({report['started']})")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_model(report: dict[str, Any], path: Path) -> None:
    """Output tokens/s and TTFT against concurrent streams, directly and through the gateway."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, style in (("direct", "o-"), ("gateway", "s--")):
        rows = report[name]
        streams = [row["streams"] for row in rows]
        left.plot(streams, [row["output_tokens_per_s"] for row in rows], style, label=name)
        right.plot(streams, [row["ttft_p50_s"] for row in rows], style, label=f"{name} p50")
        right.plot(
            streams, [row["ttft_p95_s"] for row in rows], style, alpha=0.5, label=f"{name} p95"
        )
    for axis, label in ((left, "output tokens per second"), (right, "time to first token (s)")):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("concurrent streams")
        axis.set_ylabel(label)
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    figure.suptitle(f"vLLM CPU, directly and through the gateway — {report['cpu']}", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_history(history_csv: Path, path: Path) -> None:
    """Locust's full history: users, req/s and latency percentiles over the run."""
    import csv

    with history_csv.open() as source:
        rows = [row for row in csv.DictReader(source) if row["Name"] == "Aggregated"]
    if not rows:
        return
    start = int(rows[0]["Timestamp"])
    seconds = [int(row["Timestamp"]) - start for row in rows]

    def column(name: str) -> list[float]:
        return [float(row[name]) if row[name] not in ("", "N/A") else float("nan") for row in rows]

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True)
    top.plot(seconds, column("Requests/s"), label="requests/s")
    top.plot(seconds, column("User Count"), label="users")
    top.legend(fontsize=8)
    top.grid(alpha=0.3)
    for quantile in ("50%", "95%", "99%"):
        bottom.plot(seconds, column(quantile), label=f"p{quantile[:-1]}")
    bottom.set_yscale("log")
    bottom.set_ylabel("response time (ms, log)")
    bottom.set_xlabel("seconds into the run")
    bottom.legend(fontsize=8)
    bottom.grid(alpha=0.3)
    figure.suptitle("Load test: all scenarios together")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_sweep(report: dict[str, Any], path: Path) -> None:
    """Time to first token and answers per second against concurrent chat users."""
    levels = report["levels"]
    users = [row["users"] for row in levels]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    left.plot(users, [row["ttft_p50_s"] for row in levels], "o-", label="p50")
    left.plot(users, [row["ttft_p95_s"] for row in levels], "s-", label="p95")
    left.axhline(report["slo_ttft_p95_s"], color="red", linestyle=":", label="SLO (p95)")
    left.set_ylabel("time to first token (s)")
    right.plot(users, [row["requests_per_s"] for row in levels], "o-")
    right.set_ylabel("requests per second (all pages)")
    for axis in (left, right):
        axis.set_xlabel("concurrent chat users")
        axis.grid(alpha=0.3)
    left.legend(fontsize=8)
    figure.suptitle("Chat users on the embedded CPU model")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)

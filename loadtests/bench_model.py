"""Model-tier benchmark (``make bench-model``): the embedded vLLM CPU server directly and through
the gateway, at 1, 8 and 32 concurrent streams.

Each level runs for ``BENCH_MODEL_SECONDS`` (30 by default): every stream sends streaming chat
completions back to back (``max_tokens`` 64, ``ignore_eos`` so each answer has the same length)
and records the time to the first token, the gaps between tokens, and the completion tokens
the server reports. Output: tokens/s, TTFT p50/p95, inter-token latency p50/p95, and the
gateway's share of the direct figure (target: >= 97 %). Writes ``reports/bench-model.json`` and
``.png``; traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from loadtests.common import REPORTS

ROOT = Path(__file__).resolve().parents[1]
SECONDS = float(os.environ.get("BENCH_MODEL_SECONDS", "30"))
LEVELS = [int(n) for n in os.environ.get("BENCH_MODEL_STREAMS", "1,8,32").split(",")]
MAX_TOKENS = 64
MODEL = "smollm2-135m-instruct"


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def one_stream(
    http: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    results: dict[str, list[float]],
    until: float,
    number: int,
) -> None:
    body = {
        "model": MODEL,
        "stream": True,
        "max_tokens": MAX_TOKENS,
        "ignore_eos": True,
        "temperature": 0.8,
        "stream_options": {"include_usage": True},
        "messages": [
            {"role": "user", "content": f"Tell me a story about a lighthouse ({number})."}
        ],
    }
    while time.monotonic() < until:
        started = time.monotonic()
        first: float | None = None
        last = started
        async with http.stream("POST", url, json=body, headers=headers) as response:
            if response.status_code != 200:
                results["errors"].append(float(response.status_code))
                await response.aread()
                continue
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if chunk.get("usage") and not chunk.get("choices"):
                    results["tokens"].append(float(chunk["usage"]["completion_tokens"]))
                    continue
                now = time.monotonic()
                if any(c.get("delta", {}).get("content") for c in chunk.get("choices", [])):
                    if first is None:
                        first = now
                        results["ttft"].append(now - started)
                    else:
                        results["itl"].append(now - last)
                    last = now


async def level(url: str, headers: dict[str, str], streams: int) -> dict[str, float]:
    results: dict[str, list[float]] = {"ttft": [], "itl": [], "tokens": [], "errors": []}
    timeout = httpx.Timeout(600, connect=30)
    limits = httpx.Limits(max_connections=streams + 4)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as http:
        started = time.monotonic()
        until = started + SECONDS
        await asyncio.gather(
            *(one_stream(http, url, headers, results, until, n) for n in range(streams))
        )
        elapsed = time.monotonic() - started
    return {
        "streams": streams,
        "seconds": round(elapsed, 1),
        "requests": len(results["tokens"]),
        "errors": len(results["errors"]),
        "output_tokens_per_s": round(sum(results["tokens"]) / elapsed, 1),
        "ttft_p50_s": round(quantile(results["ttft"], 0.5), 3),
        "ttft_p95_s": round(quantile(results["ttft"], 0.95), 3),
        "itl_p50_ms": round(1000 * quantile(results["itl"], 0.5), 1),
        "itl_p95_ms": round(1000 * quantile(results["itl"], 0.95), 1),
        "itl_mean_ms": round(1000 * statistics.fmean(results["itl"]), 1) if results["itl"] else 0,
    }


def cpu_kind() -> str:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    native = "avx512_bf16" in flags or "amx_bf16" in flags
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in flags.splitlines()
            if line.startswith("model name")
        ),
        "unknown",
    )
    return f"{model}; {'native bf16 (bfloat16)' if native else 'no native bf16 (float32)'}"


def main() -> int:
    from loadtests.stack import embedded_stack

    report: dict[str, Any] = {
        "cpu": cpu_kind(),
        "seconds_per_level": SECONDS,
        "max_tokens": MAX_TOKENS,
        "direct": [],
        "gateway": [],
    }
    with embedded_stack() as stack:
        targets = {
            "direct": (f"{stack.model_url}/v1/chat/completions", {}),
            "gateway": (
                f"{stack.gateway_url}/v1/chat/completions",
                {"Authorization": f"Bearer {stack.key}"},
            ),
        }
        asyncio.run(level(targets["direct"][0], {}, 1))  # warm-up (compilation, caches)
        for streams in LEVELS:
            for name, (url, headers) in targets.items():  # side by side, level by level
                row = asyncio.run(level(url, headers, streams))
                report[name].append(row)
                print(
                    f"{name:8} {streams:>3} streams: {row['output_tokens_per_s']:>7} tok/s, "
                    f"TTFT p50 {row['ttft_p50_s']} s p95 {row['ttft_p95_s']} s, "
                    f"ITL p50 {row['itl_p50_ms']} ms",
                    flush=True,
                )
    report["gateway_share"] = [
        round(g["output_tokens_per_s"] / d["output_tokens_per_s"], 3)
        for d, g in zip(report["direct"], report["gateway"], strict=True)
    ]
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "bench-model.json").write_text(json.dumps(report, indent=2))
    from loadtests.plots import plot_model

    plot_model(report, REPORTS / "bench-model.png")
    print(json.dumps({"gateway_share_of_direct_tokens_per_s": report["gateway_share"]}))
    errors = sum(row["errors"] for row in report["direct"] + report["gateway"])
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

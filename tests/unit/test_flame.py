"""The benchmark's profile summary (loadtests/flame.py): py-spy's collapsed stacks sorted into
the shares the load-testing page prints."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from loadtests import flame, report

PROCESS = 'process 10:"python -m granian --interface asgi";thread (10): MainThread'


def line_of(module: str, text: str) -> str:
    """``module``'s ``package/file.py:LINE`` of the first line holding ``text``."""
    spec = importlib.util.find_spec(module)
    assert spec is not None
    assert spec.origin is not None
    lines = Path(spec.origin).read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if text in line)
    return f"{module.replace('.', '/')}.py:{number}"


def test_samples_are_sorted_by_what_the_thread_was_doing() -> None:
    send = f"ApiEdge.__call__.<locals>.edge_send ({line_of('switchboard.api', 'await send(')})"
    handler = f"GatewayService.complete ({line_of('switchboard.gateway.service', 'def ')})"
    collapsed = [
        f"{PROCESS};run (granian/server/mp.py:249);{handler};{send} 30\n",
        f"{PROCESS};run (granian/server/mp.py:249) 20\n",
        f"{PROCESS};run (granian/server/mp.py:249);{handler} 10\n",
        'process 10:"python -m granian";thread (11) 35\n',
        f"{PROCESS};_worker (concurrent/futures/thread.py:81);"
        f"_insert_sqlite (switchboard/db/bulk.py:83) 5\n",
        "not a line of py-spy's\n",
    ]
    found = flame.shares(collapsed)
    assert found["samples"] == 100
    assert found["shares"] == {
        "granian_rust": 0.35,
        "asgi_send": 0.3,
        "event_loop": 0.2,
        "switchboard": 0.1,
        "usage_writer": 0.05,
    }


def test_the_page_prints_each_share_per_request_beside_the_other_server() -> None:
    profile = {
        "flamegraph": "bench-bare-proxy-flame-c1.svg",
        "seconds": 10,
        "samples": 1000,
        "shares": {"asgi_send": 0.5, "litestar": 0.5},
        "us_per_request": {"asgi_send": 120, "litestar": 120},
    }
    gateway = {
        **profile,
        "flamegraph": "bench-gateway-flame-c1.svg",
        "shares": {"asgi_send": 0.25, "switchboard": 0.75},
    }
    gateway["us_per_request"] = {"asgi_send": 80, "switchboard": 240}
    lines = report.profile_lines({"bare_proxy": {"profile_c1": profile},
                                  "gateway": {"profile_c1": gateway}})  # fmt: skip
    table = [line for line in lines if line.startswith("| ")]
    assert table[0] == "| | bare_proxy (1,000 samples) | gateway (1,000 samples) |"
    assert "| switchboard | 0 µs (0.0 %) | 240 µs (75.0 %) |" in table
    assert "| asgi_send | 120 µs (50.0 %) | 80 µs (25.0 %) |" in table
    assert report.profile_lines({"gateway": {}}) == []

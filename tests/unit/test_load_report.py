"""`make load-report` keeps each run's JSON and plot beside its page, so a part not run again
(in a fresh clone, say) is reported from its last run instead of disappearing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from loadtests import bench_summary, report


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    fresh, kept = tmp_path / "reports", tmp_path / "docs" / "load-testing"
    fresh.mkdir()
    monkeypatch.setattr(report, "REPORTS", fresh)
    monkeypatch.setattr(report, "ASSETS", kept)
    return fresh, kept


def test_a_new_run_is_kept_and_a_missing_one_falls_back_to_the_last(
    folders: tuple[Path, Path],
) -> None:
    fresh, kept = folders
    assert report.load("bench-model") is None  # never run
    assert report.picture("bench-model.png", "plot") == ""
    (fresh / "bench-model.json").write_text(json.dumps({"run": 1}))
    (fresh / "bench-model.png").write_bytes(b"png")
    assert report.load("bench-model") == {"run": 1}
    assert "load-testing/bench-model.png" in report.picture("bench-model.png", "plot")
    assert json.loads((kept / "bench-model.json").read_text()) == {"run": 1}
    # a fresh clone: reports/ is empty, the kept copies answer
    (fresh / "bench-model.json").unlink()
    (fresh / "bench-model.png").unlink()
    assert report.load("bench-model") == {"run": 1}
    assert "load-testing/bench-model.png" in report.picture("bench-model.png", "plot")
    # the next run replaces the kept one
    (fresh / "bench-model.json").write_text(json.dumps({"run": 2}))
    assert report.load("bench-model") == {"run": 2}


def test_the_ratio_at_32_connections_pairs_the_rounds_taken_in_turn() -> None:
    """Each round's gateway figure is divided by the bare proxy's of the same round: a slow
    minute lowers both, not the ratio."""
    ours = {"c32_in_turn": {"rounds": [700.0, 1400.0, 900.0]}}
    bare = {"c32_in_turn": {"rounds": [1000.0, 2000.0, 1000.0]}}
    assert bench_summary.in_turn_ratio(ours, bare) == pytest.approx(0.7)
    assert bench_summary.in_turn_ratio({"c32": {}}, bare) is None  # runs apart only


def test_the_latency_over_the_bare_proxy_pairs_the_rounds_taken_in_turn() -> None:
    """At one connection, each round's gateway p50 and p99 less the bare proxy's of the same
    round, and the median of those: a noisy round raises both servers, not the difference."""
    ours = {"rounds": [{"p50_ms": 1.1, "p99_ms": 3.0}, {"p50_ms": 2.0, "p99_ms": 6.0},
                       {"p50_ms": 1.0, "p99_ms": 2.5}]}  # fmt: skip
    bare = {"rounds": [{"p50_ms": 1.0, "p99_ms": 2.0}, {"p50_ms": 1.8, "p99_ms": 5.9},
                       {"p50_ms": 1.05, "p99_ms": 2.6}]}  # fmt: skip
    over = bench_summary.over_bare_in_turn(ours, bare)
    assert over is not None
    assert over["p50_ms"] == pytest.approx(0.1)
    assert over["p99_ms"] == pytest.approx(0.1)
    assert bench_summary.over_bare_in_turn({"p50_ms": 1.0}, bare) is None  # one run each


def test_the_report_shows_the_latency_over_the_bare_proxy() -> None:
    figures = {"added_p50_ms": 1.06, "added_p99_ms": 2.96, "ratio_to_bare_c32": 0.86,
               "over_bare_p50_ms": 0.04, "over_bare_p99_ms": -0.09}  # fmt: skip
    rows = "\n".join(report.summary_rows("gateway_json", figures))
    assert "over the bare proxy" in rows
    assert "+0.04 ms" in rows
    assert "-0.09 ms" in rows

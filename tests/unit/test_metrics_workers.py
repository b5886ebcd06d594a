"""/metrics with several workers: the gauges computed from shared state (the business figures,
the budgets' used ratios) show each figure as it is now. prometheus-client cannot remove a
series from its per-worker files, so a user who left the top ten or a deleted budget would stay
on the dashboards, and its alert would keep firing, until the gateway restarts."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import asyncio, warnings
    warnings.simplefilter("error")  # prometheus-client warns when it cannot remove a series
    from switchboard.budgets.counters import MemorySpend, Spend
    from switchboard.budgets.service import BudgetService, Limit
    from switchboard.observability.business import BusinessFigures, publish
    from switchboard.observability.metrics import exposition

    def figures(top):
        return BusinessFigures(active_users={"1d": 1, "7d": 2}, requests_today=3,
                               tokens_today=40, active_keys=1, top_users=top, top_keys=[])

    async def main():
        publish(figures([("alice", 30), ("bob", 10)]))
        publish(figures([("carol", 7)]))
        budgets = BudgetService(MemorySpend(), refresh_seconds=15, currency="USD")
        budgets.configure({}, {"key:7": Limit(tokens=100), "user:3": Limit(tokens=100)})
        budgets.observe("key:7", Spend(tokens=90))
        budgets.observe("user:3", Spend(tokens=20))
        budgets.configure({}, {"user:3": Limit(tokens=100)})  # key 7's budget deleted
        print(exposition(workers=2)[0].decode())

    asyncio.run(main())
    """
)


def test_a_series_dropped_from_the_figures_leaves_the_exposition(tmp_path: Path) -> None:
    files = tmp_path / "prometheus-multiproc"
    files.mkdir()
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(files),
        "SWITCHBOARD_DATA_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    text = done.stdout
    assert 'switchboard_top_user_tokens{rank="1",user="carol"} 7.0' in text
    assert 'user="alice"' not in text
    assert 'user="bob"' not in text
    assert 'switchboard_budget_used_ratio{id="3",kind="user",resource="tokens"} 0.2' in text
    assert 'id="7"' not in text
    assert "switchboard_tokens_today 40.0" in text
    assert 'switchboard_active_users{window="7d"} 2.0' in text

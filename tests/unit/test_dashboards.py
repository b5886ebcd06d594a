"""Grafana dashboards: generated from code, valid, and wired to the datasource variable."""

from __future__ import annotations

import filecmp
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

GRAFANA = REPO_ROOT / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))


def test_the_committed_dashboards_are_what_the_generator_writes(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(GRAFANA / "generate_dashboards.py"), str(tmp_path)], check=True
    )
    generated = sorted(p.name for p in tmp_path.glob("*.json"))
    assert generated == [p.name for p in DASHBOARDS]
    for name in generated:
        assert filecmp.cmp(tmp_path / name, GRAFANA / "dashboards" / name, shallow=False), (
            f"{name} is stale: run python grafana/generate_dashboards.py"
        )


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_each_dashboard_is_well_formed(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["fieldConfig"]["defaults"]["unit"]
        assert panel["targets"]
        for target in panel["targets"]:
            assert target["expr"].strip()
            assert target["datasource"]["uid"] == "${datasource}"


def test_the_five_dashboards_exist() -> None:
    titles = {json.loads(p.read_text())["title"] for p in DASHBOARDS}
    assert {t.split("· ")[1] for t in titles} == {
        "Gateway",
        "Model server (vLLM)",
        "System",
        "Business",
        "Logs",
    }

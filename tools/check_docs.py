"""``make lint``'s documentation check: the docs point at things that exist.

- Relative links in README.md, docs/ and every folder's README resolve, anchors included
  (GitHub's heading anchors).
- Every `make <target>` named in the docs, the scripts and the compose file exists, and every
  target has a ``##`` line for ``make help``.
- Every ``SWITCHBOARD_*`` variable the docs name is a setting (.env.example lists them all,
  ``*_FILE`` reads one from a file) or a variable of the deployment (compose file, its example
  environment, the deploy and CI scripts, the Makefile).
- Every alert's ``runbook_url`` is a section of docs/runbooks.md in this repository, and
  docs/troubleshooting.md covers every alert.

``python tools/check_docs.py [ROOT]`` prints one line per problem and exits 1 when there is any.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import yaml

RULES = Path("infra/prometheus/rules/switchboard.rules.yml")
RUNBOOKS = Path("docs/runbooks.md")
TROUBLESHOOTING = Path("docs/troubleshooting.md")
SCRIPT_GLOBS = ["model-server/**/*.sh", ".ci/*.sh", "deploy/*.sh", "tests/images/standins/*.sh"]
LINK = re.compile(r"\]\(([^)\s]+)\)")
MAKE_IN_DOCS = re.compile(r"(?:`|^\s*(?:#\s*)?)make ([a-z][a-z0-9-]+)", re.MULTILINE)
TARGET = re.compile(r"^([a-zA-Z0-9_-]+):(?!=)(.*)$", re.MULTILINE)
VARIABLE = re.compile(r"\bSWITCHBOARD_[A-Z0-9_]*[A-Z0-9]")
VARIABLE_SOURCES = [".env.example", "deploy/compose.env.example", "docker-compose.prod.yml",
                    "Makefile", "deploy/*.sh", ".ci/*", ".github/workflows/*.yml"]  # fmt: skip
CODE_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces → -."""
    text = re.sub(r"[`*_]", "", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    prose = CODE_FENCE.sub("", markdown)
    return {github_anchor(m) for m in re.findall(r"^#{1,6} (.+)$", prose, re.MULTILINE)}


def docs(root: Path) -> list[Path]:
    found = [root / "README.md", *sorted(root.glob("docs/**/*.md"))]
    found += sorted(root.glob("*/README.md"))
    return [path for path in found if path.is_file()]


def broken_links(root: Path) -> Iterator[str]:
    for doc in docs(root):
        text = CODE_FENCE.sub("", doc.read_text())
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            path, _, anchor = target.partition("#")
            resolved = doc.parent / path if path else doc
            where = f"{doc.relative_to(root)}: {target}"
            resolved = resolved.resolve()
            if not resolved.exists():
                yield f"{where}: no such file"
            elif (
                anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.read_text())
            ):
                yield f"{where}: no heading with that anchor"


def make_targets(makefile: str) -> dict[str, str]:
    """Each explicit target of the Makefile with the rest of its rule line."""
    return {name: rest for name, rest in TARGET.findall(makefile) if name != ".PHONY"}


def missing_targets(root: Path) -> Iterator[str]:
    makefile = (root / "Makefile").read_text()
    targets = make_targets(makefile)
    for name, rest in targets.items():
        if "## " not in rest:
            yield f"Makefile: target {name} has no '## ' description for make help"
    readme = (root / "README.md").read_text()
    for command in ("make run", "make test"):
        if not re.search(rf"(^|`){command}($|`)", readme, re.MULTILINE):
            yield f"README.md: does not show `{command}`, one of the two commands"
    sources = [*docs(root), root / ".ci/run", root / "docker-compose.prod.yml"]
    sources += [path for pattern in SCRIPT_GLOBS for path in sorted(root.glob(pattern))]
    for path in sources:
        if not path.is_file():
            continue
        for used in sorted(set(MAKE_IN_DOCS.findall(path.read_text()))):
            if used not in targets:
                yield f"{path.relative_to(root)}: names `make {used}`, which the Makefile lacks"


def unknown_variables(root: Path) -> Iterator[str]:
    known = {"SWITCHBOARD_X"}  # the docs' placeholder for "any setting"
    for pattern in VARIABLE_SOURCES:
        for path in sorted(root.glob(pattern)):
            known |= set(VARIABLE.findall(path.read_text()))
    known |= {f"{name}_FILE" for name in known}
    for doc in docs(root):
        for name in sorted(set(VARIABLE.findall(doc.read_text())) - known):
            yield f"{doc.relative_to(root)}: names {name}, which no setting or deploy file has"


def alert_rules(root: Path) -> Iterable[dict[str, object]]:
    groups = yaml.safe_load((root / RULES).read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def runbook_problems(root: Path) -> Iterator[str]:
    runbook_anchors = anchors((root / RUNBOOKS).read_text())
    troubleshooting = (root / TROUBLESHOOTING).read_text()
    for rule in alert_rules(root):
        name = str(rule["alert"])
        annotations = rule.get("annotations")
        url = annotations.get("runbook_url", "") if isinstance(annotations, dict) else ""
        expected = f"{RUNBOOKS}#{name.lower()}"
        if url != expected:
            yield f"{RULES}: {name}'s runbook_url is {url!r}, not {expected!r}"
        if name.lower() not in runbook_anchors:
            yield f"{RUNBOOKS}: no '## {name}' section"
        if f"`{name}`" not in troubleshooting:
            yield f"{TROUBLESHOOTING}: the alert `{name}` is not covered"


def problems(root: Path) -> list[str]:
    return [*broken_links(root), *missing_targets(root), *unknown_variables(root),
            *runbook_problems(root)]  # fmt: skip


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
    found = problems(root)
    for problem in found:
        print(problem)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

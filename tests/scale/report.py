"""What `make test-scale` measured, kept as the tests go: ``report.json`` (every figure) and
``report.md`` (one table) in test-artifacts/scale/, for docs/scaling.md."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Report:
    folder: Path
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    """(part, what, measured) for the markdown table."""
    started: float = field(default_factory=time.monotonic)

    def record(self, section: str, **figures: Any) -> None:
        self.sections.setdefault(section, {}).update(figures)

    def row(self, part: str, what: str, measured: str) -> None:
        self.rows.append((part, what, measured))

    def write(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.record("run", seconds=round(time.monotonic() - self.started, 1))
        (self.folder / "report.json").write_text(json.dumps(self.sections, indent=2) + "\n")
        lines = [
            "# make test-scale",
            "",
            "2 gateways (2 workers each) · vllm-router (cache_aware) · 2 vLLM CPU replicas "
            "(SmolLM2-135M) · Redis · PostgreSQL · Prometheus, on podman. "
            f"Tests and measurements: {self.sections['run']['seconds']:.0f} s.",
            "",
            "| part | what | measured |",
            "|---|---|---|",
            *(f"| {part} | {what} | {measured} |" for part, what, measured in self.rows),
            "",
        ]
        (self.folder / "report.md").write_text("\n".join(lines))

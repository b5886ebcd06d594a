"""Gauges whose series are figures a worker computed from shared state (the database, the shared
store), served from its memory when scraped.

With several workers, prometheus-client keeps a gauge's values in one file per worker and
cannot remove a series from them: a user who left the top ten, or a deleted budget, would stay
in the exposition (and its alert would keep firing) until the gateway restarted, and a dead
worker's last values would outlive it. Every worker computes the same figures, so the worker
that answers a scrape serves its own: the series are exactly the current ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector


class SnapshotGauge(Collector):
    """A gauge of labelled figures set from the latest computation (``set``, ``discard``,
    ``replace``), collected as they are when scraped."""

    def __init__(self, name: str, documentation: str, labelnames: Iterable[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.series: dict[tuple[str, ...], float] = {}

    def set(self, value: float, *labels: str) -> None:
        self.series[self._checked(labels)] = value

    def discard(self, *labels: str) -> None:
        self.series.pop(self._checked(labels), None)

    def replace(self, series: Mapping[tuple[str, ...], float]) -> None:
        """Only these series from now on."""
        self.series = {self._checked(labels): value for labels, value in series.items()}

    def _checked(self, labels: tuple[str, ...]) -> tuple[str, ...]:
        if len(labels) != len(self.labelnames):
            raise ValueError(f"{self.name} takes the labels {self.labelnames}, not {labels}")
        return labels

    def describe(self) -> list[Metric]:
        return [GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, value in list(self.series.items()):
            family.add_metric(labels, value)
        yield family

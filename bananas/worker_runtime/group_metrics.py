"""One set of metrics for a supervised group: the children's scrapes, summed.

Why aggregation and not Prometheus' multiprocess mode: that mode is switched on for a
whole interpreter at import time by ``PROMETHEUS_MULTIPROC_DIR``, which fights the
worker's own per-instance ``CollectorRegistry``; it cannot carry callback gauges
(``bananas_jobs_in_flight``); and every recycled child leaves its files behind, so
with ``--max-jobs-per-child`` the directory (and the cost of a scrape) grows without
bound. Scraping each child's private ``/metrics`` at the supervisor's scrape time
costs one loopback request per child and keeps the hot path unchanged.

The rules, per metric family:

- counters and histograms are summed over the live children, plus the totals of
  every child that has exited (its last metrics, sent after its drain; for a child
  that was killed, its last scrape), so a recycled child never makes a counter go
  backwards. ``*_created`` samples are dropped: a sum has no creation time.
- gauges read from Redis (:data:`~bananas.worker_runtime.metrics.SHARED_GAUGES`)
  are the same in every child: the largest is reported, not the sum;
- every other gauge (jobs in flight, scheduler leader) is summed over live children.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from bananas.worker_runtime.metrics import SHARED_GAUGES

Labels = tuple[tuple[str, str], ...]
SampleKey = tuple[str, Labels]


@dataclass
class Family:
    """One metric family's samples, keyed by sample name and sorted labels."""

    name: str
    kind: str
    documentation: str
    samples: dict[SampleKey, float] = field(default_factory=dict)


def parse(text: str) -> dict[str, Family]:
    """Families of a Prometheus text exposition; ``*_created`` samples are left out."""
    families: dict[str, Family] = {}
    for metric in text_string_to_metric_families(text):
        if metric.name.endswith("_created"):
            continue  # the text format gives a counter's creation times a family of their own
        family = Family(metric.name, metric.type, metric.documentation)
        for sample in metric.samples:
            if sample.name.endswith("_created"):
                continue
            key = (sample.name, tuple(sorted(sample.labels.items())))
            family.samples[key] = family.samples.get(key, 0.0) + sample.value
        families[metric.name] = family
    return families


def _accumulates(family: Family) -> bool:
    return family.kind in ("counter", "histogram", "summary")


class GroupMetrics(Collector):
    """A collector yielding the group's metrics from the children's expositions."""

    def __init__(self) -> None:
        self._live: dict[int, dict[str, Family]] = {}
        self._retired: dict[str, Family] = {}

    def update(self, child: int, text: str) -> None:
        """Record the latest scrape of ``child`` (an id the caller picks)."""
        self._live[child] = parse(text)

    def retire(self, child: int, final: str | None) -> None:
        """``child`` exited: fold its counters (``final`` if given, else its last scrape)."""
        families = parse(final) if final is not None else self._live.get(child, {})
        self._live.pop(child, None)
        for name, family in families.items():
            if not _accumulates(family):
                continue
            total = self._retired.setdefault(name, Family(name, family.kind, family.documentation))
            for key, value in family.samples.items():
                total.samples[key] = total.samples.get(key, 0.0) + value

    def forget(self, child: int) -> None:
        """Drop a child's last scrape without folding it (it never served)."""
        self._live.pop(child, None)

    def families(self) -> dict[str, Family]:
        """The group's families, by the rules of the module docstring."""
        merged: dict[str, Family] = {}
        for name, family in self._retired.items():
            merged[name] = Family(name, family.kind, family.documentation, dict(family.samples))
        for families in self._live.values():
            for name, family in families.items():
                into = merged.setdefault(name, Family(name, family.kind, family.documentation))
                shared = family.kind == "gauge" and name in SHARED_GAUGES
                for key, value in family.samples.items():
                    if shared:
                        into.samples[key] = max(into.samples.get(key, value), value)
                    else:
                        into.samples[key] = into.samples.get(key, 0.0) + value
        return merged

    def collect(self) -> Iterator[Metric]:
        for family in self.families().values():
            metric = Metric(family.name, family.documentation, family.kind)
            for (sample, labels), value in _ordered(family.samples.items()):
                metric.add_sample(sample, dict(labels), value)
            yield metric


def _ordered(
    items: Iterable[tuple[SampleKey, float]],
) -> list[tuple[SampleKey, float]]:
    """Samples in a stable order, histogram buckets by their bound."""

    def key(item: tuple[SampleKey, float]) -> tuple[Labels, str, float]:
        (sample, labels), _ = item
        bound = dict(labels).get("le")
        rest = tuple(kv for kv in labels if kv[0] != "le")
        return rest, sample, float(bound) if bound is not None else 0.0

    return sorted(items, key=key)

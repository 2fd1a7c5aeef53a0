"""Prometheus metrics of one worker or scheduler process.

Names follow the seed's guide (``bananas_jobs_processed_total``,
``bananas_job_duration_seconds``, ``bananas_queue_depth``) plus the ones the
guarantees need, and Prometheus' naming guide (base units, ``_total`` on counters). The
names and labels are a frozen contract, listed in ``docs/metrics.md`` (a unit test
compares the two). ``*_created`` series are switched off
(``prometheus_client.disable_created_metrics``, process-wide): they double the series
count and no query here uses them. Every metric lives in the process's own ``CollectorRegistry`` so
several workers embedded in one process (or one test run) never collide.
Queue gauges are refreshed from Redis at scrape time with one O(1) stats script per
routing key (``Broker.stats``): a scrape never scans.

Per-job updates are batched: :meth:`Metrics.job_finished` appends one tuple, and
:meth:`Metrics.flush` folds what gathered into the counters and histograms (one add
per label set and bucket instead of three locked updates per job). The acker flushes
once per ack batch, and a collector registered ahead of every metric flushes at each
collection, so a scrape (or ``get_sample_value``) always sees every finished job.
:attr:`Metrics.finished` counts finished jobs as a plain int, and
:meth:`Metrics.notify_after` calls back once when it reaches a limit: how a
supervised worker process knows it is due for recycling without a timer.

Under a supervisor (``--processes``) each worker process keeps its own registry and
the supervisor sums them (``group_metrics``); :data:`SHARED_GAUGES` names the gauges
read from Redis, which every process reports alike and which are not summed.

``bananas_jobs_enqueued_total`` is a counter whose value Redis keeps (every submit
increments it there), so it is exposed by a small collector (:class:`RedisCounter`)
rather than a ``Counter`` this process increments.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from bananas.models import PRIORITY_ORDER, QueueStats

DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
#: Queue wait reaches further than run time: a backlog is minutes to hours.
WAIT_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400)

#: Families whose value comes from Redis, the same in every process of a group (a
#: counter by its family name, without ``_total``).
SHARED_GAUGES = frozenset(
    {
        "bananas_jobs_enqueued",
        "bananas_queue_depth",
        "bananas_jobs_scheduled",
        "bananas_jobs_leased",
        "bananas_dead_letter_depth",
        "bananas_oldest_ready_job_age_seconds",
    }
)


class RedisCounter(Collector):
    """A counter family whose values are read from Redis (set, never incremented here)."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = list(labels)
        self.values: dict[tuple[str, ...], float] = {}

    def set(self, labels: tuple[str, ...], value: float) -> None:
        self.values[labels] = value

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self.name, self.documentation, labels=self.labels)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        for labels, value in sorted(self.values.items()):
            family.add_metric(labels, value)
        yield family


class Metrics:
    """The metric families and cached children."""

    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        #: Finished jobs not yet folded into the metrics: (name, status, routing key,
        #: priority, seconds, waited or None). Registered first: flushed at every collect.
        self._batch: list[tuple[str, str, str, str, float, float | None]] = []
        r.register(_FlushFirst(self.flush))
        self.processed = Counter(
            "bananas_jobs_processed_total",
            "Jobs finished by this process, by outcome.",
            ["job_name", "status", "routing_key", "priority"],
            registry=r,
        )
        self.duration = Histogram(
            "bananas_job_duration_seconds",
            "Handler run time.",
            ["job_name", "routing_key", "priority"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "bananas_job_queue_wait_seconds",
            "Time from a job being ready (submitted, or due) to its first attempt starting.",
            ["routing_key", "priority"],
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.retried = Counter(
            "bananas_jobs_retried_total",
            "Failed attempts scheduled again.",
            ["job_name", "routing_key"],
            registry=r,
        )
        self.dead = Counter(
            "bananas_jobs_dead_lettered_total",
            "Jobs sent to the dead-letter queue.",
            ["job_name", "routing_key"],
            registry=r,
        )
        self.enqueued = RedisCounter(
            "bananas_jobs_enqueued",
            "Jobs ever enqueued on a routing key (from Redis).",
            ["routing_key"],
        )
        r.register(self.enqueued)
        self.dead_trimmed = Counter(
            "bananas_dead_letters_trimmed_total",
            "Old dead-lettered jobs deleted by the routing key's retention (oldest first).",
            ["routing_key"],
            registry=r,
        )
        self.reaped = Counter(
            "bananas_leases_reaped_total",
            "Expired leases returned to their queue by this process.",
            ["routing_key"],
            registry=r,
        )
        self.in_flight = Gauge(
            "bananas_jobs_in_flight", "Jobs this process holds right now.", registry=r
        )
        self.slots = Gauge(
            "bananas_worker_slots",
            "Jobs this process can run at once (its concurrency).",
            registry=r,
        )
        self.busy_slots = Gauge(
            "bananas_worker_busy_slots",
            "Slots of this process running a job right now.",
            registry=r,
        )
        self.depth = Gauge(
            "bananas_queue_depth",
            "Ready jobs (from Redis).",
            ["priority", "routing_key"],
            registry=r,
        )
        self.scheduled = Gauge(
            "bananas_jobs_scheduled",
            "Delayed jobs and retries waiting (from Redis).",
            ["routing_key"],
            registry=r,
        )
        self.leased = Gauge(
            "bananas_jobs_leased",
            "Jobs leased by any worker (from Redis).",
            ["routing_key"],
            registry=r,
        )
        self.dead_depth = Gauge(
            "bananas_dead_letter_depth",
            "Jobs in the dead-letter queue (from Redis).",
            ["routing_key"],
            registry=r,
        )
        self.oldest = Gauge(
            "bananas_oldest_ready_job_age_seconds",
            "Age of the oldest ready job (from Redis).",
            ["routing_key"],
            registry=r,
        )
        self.cron_fires = Counter(
            "bananas_cron_fires_total",
            "Cron slots fired by this process.",
            ["schedule"],
            registry=r,
        )
        self.leader = Gauge(
            "bananas_scheduler_leader",
            "1 while this process leads the scheduler replicas.",
            registry=r,
        )
        self.loop_blocked = Gauge(
            "bananas_event_loop_blocked_seconds",
            "How long the worker's event loop has not turned (0 while it runs); set by "
            "the watchdog thread.",
            registry=r,
        )
        self.loop_blocks = Counter(
            "bananas_event_loop_blocks",
            "Stretches in which a handler blocked the event loop past the threshold.",
            registry=r,
        )
        self.clock_offset = Gauge(
            "bananas_clock_offset_seconds",
            "Redis' clock minus this host's, measured by the cron scheduler at each tick.",
            registry=r,
        )
        self.orphaned = Counter(
            "bananas_orphaned_entries",
            "Queue entries fetched that had no job record (dropped, and logged).",
            ["routing_key"],
            registry=r,
        )
        #: (job name, status, routing key, priority) -> its processed counter and duration
        #: histogram.
        self._children: dict[tuple[str, str, str, str], tuple[Counter, Histogram]] = {}
        #: (routing key, priority) -> its queue-wait histogram.
        self._waits: dict[tuple[str, str], Histogram] = {}
        #: Jobs this process has finished (any outcome), counted as a plain int.
        self.finished = 0
        self._limit = 0
        self._on_limit: Callable[[], None] | None = None

    def notify_after(self, jobs: int, callback: Callable[[], None]) -> None:
        """Call ``callback`` once, when :attr:`finished` reaches ``jobs`` (0: never)."""
        self._limit = jobs
        self._on_limit = callback if jobs > 0 else None

    def job_finished(
        self,
        name: str,
        status: str,
        routing_key: str,
        seconds: float,
        priority: str = "normal",
        waited: float | None = None,
    ) -> None:
        """Count one finished job (every job, whatever its outcome), its run time and,
        for a first attempt (``waited`` not None), how long it waited in its queue.
        Folded into the metrics at the next :meth:`flush`."""
        self._batch.append((name, status, routing_key, priority, seconds, waited))
        self.finished += 1
        if self.finished == self._limit and self._on_limit is not None:
            self._on_limit()

    def flush(self) -> None:
        """Fold the finished jobs gathered since the last flush into the metrics."""
        batch = self._batch
        if not batch:
            return
        self._batch = []
        runs: dict[tuple[str, str, str, str], list[float]] = {}
        waits: dict[tuple[str, str], list[float]] = {}
        for name, status, routing_key, priority, seconds, waited in batch:
            key = (name, status, routing_key, priority)
            values = runs.get(key)
            if values is None:
                runs[key] = [seconds]
            else:
                values.append(seconds)
            if waited is not None:
                waits.setdefault((routing_key, priority), []).append(waited)
        for key, values in runs.items():
            children = self._children.get(key)
            if children is None:
                name, status, routing_key, priority = key
                children = self._children[key] = (
                    self.processed.labels(name, status, routing_key, priority),
                    self.duration.labels(name, routing_key, priority),
                )
            children[0].inc(len(values))
            observe_many(children[1], values)
        for (routing_key, priority), values in waits.items():
            wait = self._waits.get((routing_key, priority))
            if wait is None:
                wait = self._waits[(routing_key, priority)] = self.queue_wait.labels(
                    routing_key, priority
                )
            observe_many(wait, values)

    def queue(self, stats: QueueStats, enqueued: int) -> None:
        rk = stats.routing_key
        for priority in PRIORITY_ORDER:
            self.depth.labels(priority.value, rk).set(stats.depth[priority])
        self.scheduled.labels(rk).set(stats.scheduled)
        self.leased.labels(rk).set(stats.in_flight)
        self.dead_depth.labels(rk).set(stats.dead)
        self.oldest.labels(rk).set(stats.oldest_age or 0.0)
        self.enqueued.set((rk,), enqueued)


class _FlushFirst(Collector):
    """Registered ahead of every metric: a collection first folds in pending jobs."""

    def __init__(self, flush: Callable[[], None]) -> None:
        self._flush = flush

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        self._flush()
        return iter(())


def observe_many(histogram: Histogram, values: Sequence[float]) -> None:
    """``histogram.observe`` of each of ``values``, with one add per bucket touched and
    one to the sum (the child's own fields; per value where they are not there)."""
    child: Any = histogram
    bounds = getattr(child, "_upper_bounds", None)
    buckets = getattr(child, "_buckets", None)
    total = getattr(child, "_sum", None)
    if bounds is None or buckets is None or total is None:
        for value in values:
            histogram.observe(value)
        return
    counts: dict[int, int] = {}
    added = 0.0
    for value in values:
        added += value
        if value == value:  # a NaN lands in no bucket, as with observe
            at = bisect_left(bounds, value)
            counts[at] = counts.get(at, 0) + 1
    total.inc(added)
    for at, count in counts.items():
        buckets[at].inc(count)

"""The exposed metric families equal the frozen list in docs/metrics.md (names, types,
labels), and the list itself follows the Prometheus naming guide."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bananas.config import Settings
from bananas.models import Priority, QueueStats
from bananas.operator.metrics import Metrics as OperatorMetrics
from bananas.worker_runtime.metrics import Metrics
from bananas.worker_runtime.supervisor import Supervisor
from tests.support.metrics_doc import Table, documented


def exposed(registry: CollectorRegistry) -> Table:
    """The registry's families as a query names them: metric -> (type, labels)."""
    text = generate_latest(registry).decode()
    assert "_created" not in text, "no *_created series"
    table: Table = {}
    for family in text_string_to_metric_families(text):
        name = family.name + "_total" if family.type == "counter" else family.name
        labels = frozenset(k for s in family.samples for k in s.labels if k != "le")
        table[name] = (family.type, labels)
    return table


def busy_worker_metrics() -> Metrics:
    """A worker's metrics with a sample in every labelled family."""
    m = Metrics()
    m.job_finished("echo", "completed", "default", 0.01, "high", 0.5)
    m.retried.labels("echo", "default").inc()
    m.dead.labels("echo", "default").inc()
    m.reaped.labels("default").inc()
    m.cron_fires.labels("nightly").inc()
    m.orphaned.labels("default").inc()
    m.dead_trimmed.labels("default").inc()
    stats = QueueStats(
        routing_key="default",
        depth=dict.fromkeys(Priority, 1),
        scheduled=0,
        in_flight=0,
        dead=0,
        oldest_age=None,
    )
    m.queue(stats, enqueued=3)
    return m


def test_the_worker_exposes_exactly_the_documented_metrics() -> None:
    assert exposed(busy_worker_metrics().registry) == documented()["worker"]


def test_the_supervisor_adds_exactly_the_documented_metrics() -> None:
    supervisor = Supervisor(Settings(processes=2))
    supervisor.exits.labels("stopped").inc()
    supervisor.metrics.update(1, generate_latest(busy_worker_metrics().registry).decode())
    doc = documented()
    assert exposed(supervisor.registry) == doc["worker"] | doc["supervisor"]


def test_the_operator_exposes_exactly_the_documented_metrics() -> None:
    m = OperatorMetrics()
    m.desired_replicas.labels("ns", "pool").set(1)
    m.pool_load.labels("ns", "pool").set(1)
    m.polls.labels("ns", "pool").inc()
    m.scale_decisions.labels("ns", "pool", "ScaledUp").inc()
    m.redis_errors.labels("WorkerPool").inc()
    m.reconcile_errors.labels("WorkerPool").inc()
    m.applies.labels("unchanged").inc()
    assert exposed(m.registry) == documented()["operator"]


def test_the_documented_names_follow_the_naming_guide() -> None:
    tables = documented()
    assert set(tables) == {"worker", "supervisor", "operator"}
    for table in tables.values():
        assert table, "a table the parser could not read"
        for name, (kind, labels) in table.items():
            assert re.fullmatch(r"bananas_[a-z0-9_]+", name), name
            assert name.endswith("_total") == (kind == "counter"), name
            if kind == "histogram":
                assert name.endswith("_seconds"), f"{name}: a histogram here is of time"
            assert all(re.fullmatch(r"[a-z_]+", label) for label in labels), name

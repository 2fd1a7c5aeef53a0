"""Prometheus metrics of the operator.

The operator's own registry (not prometheus_client's global one), so that
several operators in one process (tests) do not collide, served on
``METRICS_PORT`` by :func:`serve`. What is worth a graph: the size each pool is
asked to be and the load behind it, every scale decision by reason, Redis
failures, and reconcile failures by resource kind. The names are frozen in ``docs/metrics.md``.
"""

from __future__ import annotations

import contextlib

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    start_http_server,
)


class Metrics:
    """The operator's metrics, in a registry of their own."""

    def __init__(self) -> None:
        # no ``*_created`` series (process-wide; docs/metrics.md)
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        pool = ["namespace", "pool"]
        self.desired_replicas = Gauge(
            "bananas_operator_desired_replicas",
            "Replicas the autoscaler asks of a WorkerPool.",
            pool,
            registry=self.registry,
        )
        self.pool_load = Gauge(
            "bananas_operator_pool_jobs",
            "Queued plus in-flight jobs a WorkerPool is sized by.",
            pool,
            registry=self.registry,
        )
        self.polls = Counter(
            "bananas_operator_polls",
            "Autoscaler polls of a WorkerPool (whether or not they changed anything).",
            pool,
            registry=self.registry,
        )
        self.scale_decisions = Counter(
            "bananas_operator_scale_decisions",
            "Scale decisions taken, by reason (ScaledUp, ScaledDown, ScaleToZero).",
            [*pool, "reason"],
            registry=self.registry,
        )
        self.leader = Gauge(
            "bananas_operator_leader",
            "1 while this replica holds the operator's Lease and acts, else 0.",
            registry=self.registry,
        )
        self.redis_errors = Counter(
            "bananas_operator_redis_errors",
            "Failed reads or writes of Redis, by resource kind.",
            ["kind"],
            registry=self.registry,
        )
        self.reconcile_errors = Counter(
            "bananas_operator_reconcile_errors",
            "Reconciles that failed (and will be retried), by resource kind.",
            ["kind"],
            registry=self.registry,
        )
        self.applies = Counter(
            "bananas_operator_applies",
            "Groups of objects a resource owns, applied or found as rendered already.",
            ["result"],
            registry=self.registry,
        )

    def forget_pool(self, namespace: str, pool: str) -> None:
        """Drop a deleted pool's series."""
        for metric in (self.desired_replicas, self.pool_load, self.polls):
            with contextlib.suppress(KeyError):
                metric.remove(namespace, pool)

    def serve(self, port: int) -> None:
        """Serve ``/metrics`` on ``port`` from a daemon thread."""
        start_http_server(port, registry=self.registry)

"""Batched per-job metrics: folded in per ack batch and at every collection, with the
same values as one ``observe`` per job."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Histogram

from bananas.worker_runtime.metrics import DURATION_BUCKETS, Metrics, observe_many


def _samples(registry: CollectorRegistry, name: str) -> dict[str, float]:
    return {
        sample.name.removeprefix(name) + repr(sorted(sample.labels.items())): sample.value
        for family in registry.collect()
        for sample in family.samples
        if family.name == name and not sample.name.endswith("_created")
    }


def test_observe_many_matches_one_observe_per_value() -> None:
    rng = random.Random(7)
    values = [rng.choice([0.0, 0.001, 0.005, 10.0, 300.0, 1e9, -1.0]) for _ in range(200)]
    values += [rng.random() * 400 for _ in range(2000)]
    registry = CollectorRegistry()
    one = Histogram("one", "per value", buckets=DURATION_BUCKETS, registry=registry)
    many = Histogram("many", "batched", buckets=DURATION_BUCKETS, registry=registry)
    for value in values:
        one.observe(value)
    observe_many(many, values)
    a, b = _samples(registry, "one"), _samples(registry, "many")
    assert a.keys() == b.keys() and len(a) == len(DURATION_BUCKETS) + 3
    for key, value in a.items():
        assert abs(value - b[key]) < 1e-6 * max(1.0, abs(value)), key


def test_a_collection_sees_every_finished_job_without_a_flush() -> None:
    m = Metrics()
    for _ in range(3):
        m.job_finished("echo", "completed", "default", 0.002, "high", 0.5)
    m.job_finished("echo", "dead", "default", 0.2)
    labels = {"job_name": "echo", "routing_key": "default", "priority": "high"}
    get = m.registry.get_sample_value
    assert get("bananas_jobs_processed_total", {**labels, "status": "completed"}) == 3.0
    assert (
        get("bananas_jobs_processed_total", {**labels, "priority": "normal", "status": "dead"})
        == 1.0
    )
    assert get("bananas_job_duration_seconds_bucket", {**labels, "le": "0.005"}) == 3.0
    assert (
        get("bananas_job_queue_wait_seconds_count", {"routing_key": "default", "priority": "high"})
        == 3.0
    )
    assert m.finished == 4
    m.job_finished("echo", "completed", "default", 0.002, "high")
    m.flush()
    assert get("bananas_jobs_processed_total", {**labels, "status": "completed"}) == 4.0
    assert (
        get("bananas_job_queue_wait_seconds_count", {"routing_key": "default", "priority": "high"})
        == 3.0
    )

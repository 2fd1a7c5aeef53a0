"""The supervisor's sum of its children's metrics (pure: expositions in, samples out)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from bananas.models import Priority, QueueStats
from bananas.worker_runtime.group_metrics import GroupMetrics, parse
from bananas.worker_runtime.metrics import Metrics


def child(jobs: int, depth: int, in_flight: int) -> str:
    m = Metrics()
    for _ in range(jobs):
        m.job_finished("echo", "completed", "default", 0.002)
    depth_by = {p: 0 for p in Priority}
    depth_by[Priority.NORMAL] = depth
    stats = QueueStats(
        routing_key="default", depth=depth_by, scheduled=0, in_flight=0, dead=0, oldest_age=None
    )
    m.queue(stats, enqueued=100)
    m.in_flight.set_function(lambda: in_flight)
    return generate_latest(m.registry).decode()


def rendered(group: GroupMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(group)
    out = {}
    for family in parse(generate_latest(registry).decode()).values():
        out.update(family.samples)
    return out


PROCESSED = (
    "bananas_jobs_processed_total",
    (("job_name", "echo"), ("routing_key", "default"), ("status", "completed")),
)
COUNT = ("bananas_job_duration_seconds_count", (("job_name", "echo"), ("routing_key", "default")))
DEPTH = ("bananas_queue_depth", (("priority", "normal"), ("routing_key", "default")))
IN_FLIGHT = ("bananas_jobs_in_flight", ())


def test_counters_and_histograms_sum_and_redis_gauges_do_not() -> None:
    group = GroupMetrics()
    group.update(1, child(jobs=3, depth=7, in_flight=2))
    group.update(2, child(jobs=4, depth=5, in_flight=1))
    samples = rendered(group)
    assert samples[PROCESSED] == 7
    assert samples[COUNT] == 7
    bucket = ("bananas_job_duration_seconds_bucket", (*COUNT[1], ("le", "0.005")))
    assert samples[(bucket[0], tuple(sorted(bucket[1])))] == 7
    assert samples[DEPTH] == 7, "a gauge read from Redis is the same queue, not twice the depth"
    assert samples[IN_FLIGHT] == 3, "jobs in flight are each process's own: summed"
    assert not any(name.endswith("_created") for name, _ in samples)
    registry = CollectorRegistry()
    registry.register(group)
    assert "_created" not in generate_latest(registry).decode()


def test_a_retired_child_keeps_its_counts_but_not_its_gauges() -> None:
    group = GroupMetrics()
    group.update(1, child(jobs=3, depth=7, in_flight=2))
    group.update(2, child(jobs=4, depth=5, in_flight=1))
    group.retire(1, child(jobs=5, depth=7, in_flight=0))  # its last word, after the drain
    group.update(3, child(jobs=1, depth=5, in_flight=1))  # its replacement
    samples = rendered(group)
    assert samples[PROCESSED] == 5 + 4 + 1
    assert samples[IN_FLIGHT] == 2
    assert samples[DEPTH] == 5


def test_a_killed_child_is_folded_from_its_last_scrape() -> None:
    group = GroupMetrics()
    group.update(1, child(jobs=3, depth=0, in_flight=0))
    group.retire(1, None)
    group.retire(2, None)  # never scraped: nothing to fold
    assert rendered(group)[PROCESSED] == 3

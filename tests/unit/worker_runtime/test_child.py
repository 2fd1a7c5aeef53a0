"""A supervised child's recycling limits and link discovery."""

from __future__ import annotations

from bananas.worker_runtime.child import ChildLink, Recycler, resident_mib
from bananas.worker_runtime.metrics import Metrics


def test_the_job_limit_fires_once_on_the_job_that_reaches_it() -> None:
    metrics = Metrics()
    reasons: list[str] = []
    Recycler(metrics, max_jobs=3).watch(reasons.append)
    for _ in range(2):
        metrics.job_finished("echo", "completed", "default", 0.0)
    assert reasons == []
    for _ in range(5):
        metrics.job_finished("echo", "failed", "default", 0.0)
    assert reasons == ["finished 3 job(s)"]


def test_no_limit_never_fires() -> None:
    metrics = Metrics()
    reasons: list[str] = []
    Recycler(metrics).watch(reasons.append)
    for _ in range(10):
        metrics.job_finished("echo", "completed", "default", 0.0)
    assert reasons == [] and metrics.finished == 10


async def test_the_memory_limit_fires_past_the_limit() -> None:
    reasons: list[str] = []
    sizes = iter([100.0])
    recycler = Recycler(Metrics(), max_memory_mib=64, rss=lambda: next(sizes))
    await recycler.watch_memory(reasons.append)
    assert reasons == ["resident memory 100 MiB > 64 MiB"]


def test_resident_size_is_plausible() -> None:
    assert 5 < resident_mib() < 4096


def test_a_process_is_supervised_only_with_the_link_variable() -> None:
    assert ChildLink.from_env({}) is None
    link = ChildLink.from_env({"BANANAS_SUPERVISOR_FD": "7"})
    assert link is not None and link.fd == 7

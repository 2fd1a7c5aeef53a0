"""Redis itself fails under load: SIGKILL and restart with AOF, and a SIGSTOP stall
longer than a lease (``tests.chaos.redis_restart`` / ``redis_stall``)."""

from __future__ import annotations

import random

import pytest

from tests.chaos import CI, Servers, redis_restart, redis_stall, table

pytestmark = pytest.mark.timeout(150)

#: Redis documents appendfsync everysec as losing at most about two seconds of writes.
FSYNC_WINDOW = 2.0


def test_redis_restart_with_aof_everysec(servers: Servers, rng: random.Random) -> None:
    report = redis_restart(servers, CI, rng)
    print(table([report]))
    d = report.details
    assert d["processes alive at the end"] == "3/3", "a process died with Redis"
    assert d["/healthz at the end"] == [200] * 3, "a task inside a process died with Redis"
    assert report.recovery and max(report.recovery) < 10, "/readyz did not come back"
    assert d["submits that failed and were retried (same id)"] > 0, "the outage went unseen"
    # Only writes acknowledged inside the fsync window before a kill may be lost (and a
    # SIGKILL of the server alone loses none: the kernel still holds what Redis wrote).
    windows = d["lost: s acknowledged before the kill"]
    assert all(w is not None and w <= FSYNC_WINDOW for w in windows), windows
    assert report.acks == report.jobs - report.lost, "a job completed twice"


def test_redis_stall_longer_than_a_lease(servers: Servers, rng: random.Random) -> None:
    report = redis_stall(servers, CI, rng)
    print(table([report]))
    d = report.details
    assert d["alive during / after"].endswith(f"/ {CI.workers}"), "a worker died"
    assert d["/healthz after"] == [200] * CI.workers
    assert report.acks == report.jobs - report.lost, "a job completed twice: stale ack taken"
    # Only a job whose lease could lapse in the stall may run again: one leased before
    # the stall ended, and at most one extra run each (one lapse per stall).
    late = d["latest first start of a duplicated job, s after SIGCONT"]
    assert late is None or late < 0, "a job first leased after the stall ran twice"
    assert report.max_runs <= 2, "a re-delivered job lost its lease again"
    assert report.lost == 0
    assert report.dup_bound is not None and report.duplicated <= report.dup_bound

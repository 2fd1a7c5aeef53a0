"""Workers SIGKILLed under load: nothing is lost, and a job runs again only if the
killed worker held it (``tests.chaos.crashes`` has the scenario)."""

from __future__ import annotations

import random

import pytest

from tests.chaos import CI, Servers, crashes, table

pytestmark = pytest.mark.timeout(150)


def test_sigkilled_workers_lose_no_job(servers: Servers, rng: random.Random) -> None:
    report = crashes(servers, CI, rng)
    print(table([report]))
    assert report.faults >= 3, "too few kills to prove anything: the drain was too quick"
    assert report.lost == 0, report.details
    assert report.acks == report.jobs, "a job was completed twice (or never) in Redis"
    # A completed run is repeated only when its ack died with the worker: the job was
    # still leased to the victim when it was killed.
    assert report.dup_bound is not None
    assert report.duplicated <= report.dup_bound
    assert report.details["leases reaped"] >= report.dup_bound
    # Orphans come back after one lease (2 s) plus a reaper pass, not after minutes.
    assert max(report.recovery) < CI.lease + 3.0, report.recovery

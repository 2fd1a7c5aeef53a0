"""A rolling restart by SIGTERM under load loses nothing and runs nothing twice
(``tests.chaos.rollout`` has the scenario)."""

from __future__ import annotations

import random

import pytest

from tests.chaos import CI, Servers, rollout, table

pytestmark = pytest.mark.timeout(150)


def test_rolling_restart_is_exactly_once(servers: Servers, rng: random.Random) -> None:
    report = rollout(servers, CI, rng)
    print(table([report]))
    assert report.details["exit codes"] == [0]
    assert report.faults == CI.workers * CI.rollouts
    assert report.lost == 0
    assert report.acks == report.jobs
    assert report.duplicated == 0, "a drained worker's finished job ran again"
    assert report.details["jobs started more than once"] == 0, "a job was cut short"
    assert report.details["leases reaped"] == 0, "a drained worker left a lease to expire"
    assert max(report.recovery) < 10, "a 40 ms job does not need a long drain"

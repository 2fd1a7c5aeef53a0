"""Scheduler failover: the standby takes over within the lease, and every cron slot is
fired exactly once across leader crashes (``tests.chaos.scheduler_failover`` and
``tests.chaos.cron_failover``)."""

from __future__ import annotations

import random

import pytest

from tests.chaos import CI, Servers, cron_failover, scheduler_failover, table
from tests.support.servers import RedisServer

pytestmark = pytest.mark.timeout(120)

#: LEASE_DURATION of the scheduler processes (the CLI's floor for leader election).
PROCESS_LEASE = 3.0


def test_scheduler_process_standby_takes_over(servers: Servers, rng: random.Random) -> None:
    report = scheduler_failover(servers, CI, rng)
    print(table([report]))
    assert report.faults == CI.leader_kills
    # The lock of a SIGKILLed leader lapses after the lease; the standby asks every 0.2 s
    # (the rest is slack for a loaded machine).
    assert all(t <= PROCESS_LEASE + 3 for t in report.recovery), report.recovery
    tokens = report.details["fencing tokens"]
    assert tokens == sorted(set(tokens)), "every change of leader bumps the fencing token"


async def test_cron_slots_fire_once_across_leader_crashes(single_redis: RedisServer) -> None:
    # A minute slot every 3 s; a failover of up to 2.5 s stays inside the deadline.
    lease, speed, deadline = 0.6, 20.0, 50.0
    report = await cron_failover(
        single_redis.url, kills=3, lease=lease, speed=speed, deadline=deadline
    )
    print(table([report]))
    assert report.faults == 3
    assert all(t <= lease + 1.0 for t in report.recovery), report.recovery
    assert max(report.recovery) * speed < deadline, "the test's failover outran its deadline"
    assert report.lost == 0, f"slots skipped: {report.details['missing slots']}"
    assert report.duplicated == 0, "a slot ran twice"
    assert report.jobs >= 2 * 3 + 2
    assert report.details["status run_count / skipped_count"].endswith("/ 0")

"""Skewed clocks (libfaketime, ``tests.chaos.skew_clocks``): workers and a scheduler
whose wall clock is ±20 s off, or jumps while they run, must neither reap a live job
nor promote a delayed job early.

Every deadline is Redis' own clock (``TIME`` inside the scripts), so a host's clock
only matters where a process compares with it itself: the cron leader, which measures
its offset to Redis and corrects for it (``docs/reliability.md#one-clock``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from tests.chaos import CI, Servers, table
from tests.chaos.common import Fleet, new_tag
from tests.chaos.skew_clocks import clock_jump, skewed_scheduler, skewed_workers
from tests.support import faketime
from tests.support.faketime import SkewedClock
from tests.support.processes import http_get
from tests.support.servers import RedisServer
from tests.support.waiting import eventually

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(faketime.library() is None, reason="libfaketime is not installed"),
]


def test_workers_twenty_seconds_apart_reap_no_live_job(
    servers: Servers, rng: random.Random
) -> None:
    report = skewed_workers(servers, CI, rng)
    print(table([report]))
    assert (report.lost, report.duplicated, report.falsely_dead) == (0, 0, 0), report.details


def test_scheduler_twenty_seconds_fast_reaps_nothing_and_promotes_nothing_early(
    servers: Servers, rng: random.Random
) -> None:
    report = skewed_scheduler(servers, CI, rng)
    print(table([report]))
    assert (report.lost, report.duplicated, report.falsely_dead) == (0, 0, 0), report.details
    assert report.details["delayed jobs run early (s early)"] == []


def test_a_worker_whose_clock_jumps_twenty_seconds_reaps_no_live_job(
    servers: Servers, rng: random.Random
) -> None:
    report = clock_jump(servers, CI, rng)
    print(table([report]))
    assert (report.lost, report.duplicated, report.falsely_dead) == (0, 0, 0), report.details


def test_the_cron_leader_measures_and_reports_its_offset_to_redis(
    servers: Servers, clocks: list[SkewedClock]
) -> None:
    queue = RedisServer(servers.binary).start()
    fast = SkewedClock(+20.0)
    clocks.append(fast)
    fleet = Fleet(queue.url, servers.ledger.url, f"skew{new_tag()}")
    try:
        leader = fleet.spawn("scheduler", SCHEDULER_INTERVAL="0.2s", **fast.env())

        def offset() -> float | None:
            for line in http_get(leader.port, "/metrics")[1].splitlines():
                if line.startswith("bananas_clock_offset_seconds "):
                    value = float(line.split()[1])
                    return value if value != 0 else None
            return None

        measured = eventually(offset, 20, what=leader.log)
        assert -20.5 < measured < -19.5, "Redis' clock minus this host's"
        eventually(lambda: "off Redis' clock" in leader.log(), 10, what=leader.log)
    finally:
        fleet.close()
        queue.cleanup()


@pytest.fixture
def clocks() -> Iterator[list[SkewedClock]]:
    made: list[SkewedClock] = []
    yield made
    for clock in made:
        clock.cleanup()

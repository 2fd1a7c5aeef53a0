"""Skewed clocks (libfaketime, ``tests.chaos.skew_clocks``): workers and a scheduler
whose wall clock is ±20 s off, or jumps while they run, must neither reap a live job
nor promote a delayed job early.

Every deadline is Redis' own clock (``TIME`` inside the scripts), so a host's clock
only matters where a process compares with it itself: the cron leader, which measures
its offset to Redis and corrects for it (``docs/reliability.md#one-clock``).
"""

from __future__ import annotations

import random

import pytest

from tests.chaos import CI, Servers, table
from tests.chaos.skew_clocks import clock_jump, skewed_scheduler, skewed_workers
from tests.support import faketime

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

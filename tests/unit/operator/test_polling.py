"""Autoscaler polls and CronSchedule syncs: spread over their interval, jittered, bounded."""

from __future__ import annotations

from random import Random

from bananas.operator.config import OperatorConfig
from bananas.operator.cron_handlers import first_sync_delay
from bananas.operator.pool_handlers import FIRST_POLL_SPREAD, first_delay, jittered


def test_polls_are_spread_and_jittered() -> None:
    rng = Random(7)
    firsts = [first_delay(rng, {"autoscaling": {"pollInterval": 15}}) for _ in range(1000)]
    assert min(firsts) >= 0.0 and max(firsts) <= FIRST_POLL_SPREAD
    assert max(firsts) - min(firsts) > FIRST_POLL_SPREAD - 0.1  # spread over all of it
    short = [first_delay(rng, {"autoscaling": {"pollInterval": 2}}) for _ in range(100)]
    assert max(short) <= 2.0 and max(short) - min(short) > 1.8  # within a shorter interval
    assert all(0.0 <= first_delay(rng, {}) <= FIRST_POLL_SPREAD for _ in range(100))
    sleeps = [jittered(rng, 10.0) for _ in range(1000)]
    assert 9.0 <= min(sleeps) < 9.2 and 10.8 < max(sleeps) <= 11.0


def test_max_concurrent_polls_from_the_environment() -> None:
    assert OperatorConfig.from_env({"MAX_CONCURRENT_POLLS": "8"}).max_concurrent_polls == 8
    assert OperatorConfig.from_env({}).max_concurrent_polls == 64


def test_a_schedules_first_sync_comes_one_to_two_intervals_after_its_resume() -> None:
    delay = first_sync_delay(15.0, Random(3))
    firsts = [delay(body={}, retry=0) for _ in range(1000)]
    assert min(firsts) >= 15.0 and max(firsts) <= 30.0
    assert max(firsts) - min(firsts) > 14.0  # spread over an interval

"""Skewed clocks (libfaketime): workers and a scheduler whose wall clock is ±20 s off,
or jumps while they run, must neither reap a live job nor promote a delayed job early.

Every deadline is Redis' own clock (``TIME`` inside the scripts), so a host's clock
only matters where a process compares with it itself: the cron leader, which measures
its offset to Redis and corrects for it (``docs/reliability.md#one-clock``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from bananas import Client, JobSpec
from bananas.keys import KeySpace
from tests.apps.chaos_handlers import ledger_key
from tests.chaos.common import ROUTE, Fleet, new_tag, outcome, raw, wait_drained
from tests.support import faketime
from tests.support.faketime import SkewedClock
from tests.support.servers import RedisServer
from tests.support.waiting import eventually

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(faketime.library() is None, reason="libfaketime is not installed"),
]

LEASE = "2s"
#: Each job holds its slot for several leases, so a reaper that misreads a deadline
#: takes it back while it runs.
JOB_MS = 2500
JOBS = 30
#: The default budget: a job reaped four times is dead-lettered as "worker lost".
RETRIES = 3


@pytest.fixture
def queue(single_redis: RedisServer) -> Iterator[RedisServer]:
    server = RedisServer(single_redis.binary).start()
    yield server
    server.cleanup()


@pytest.fixture
def clocks() -> Iterator[list[SkewedClock]]:
    made: list[SkewedClock] = []
    yield made
    for clock in made:
        clock.cleanup()


def _fleet(queue: RedisServer, ledger: RedisServer, prefix: str) -> Fleet:
    return Fleet(queue.url, ledger.url, prefix, LEASE_DURATION=LEASE, WORKER_CONCURRENCY="8")


def _submit(client: Client, tag: str, n: int, ms: float, **options: object) -> list[str]:
    specs = [
        JobSpec("work", {"tag": tag, "n": i, "ms": ms}, max_retries=RETRIES, **options)
        for i in range(n)
    ]
    return client.submit_many(specs)


def test_workers_twenty_seconds_apart_reap_no_live_job(
    queue: RedisServer, single_redis: RedisServer, clocks: list[SkewedClock]
) -> None:
    tag, prefix = new_tag(), f"skew{new_tag()}"
    route = KeySpace(prefix).route(ROUTE)
    fast, slow = SkewedClock(+20.0), SkewedClock(-20.0)
    clocks += [fast, slow]
    with _fleet(queue, single_redis, prefix) as fleet, Client(queue.url, prefix=prefix) as c:
        ids = _submit(c, tag, JOBS, JOB_MS)
        fleet.spawn(**fast.env())
        fleet.spawn(**slow.env())
        wait_drained(raw(queue), route, fleet, timeout=90)
        result = outcome(raw(queue), raw(single_redis), tag, route, ids)
    print("workers at +20 s and -20 s:", result)
    assert (result.lost, result.duplicated, result.falsely_dead) == (0, 0, 0), result


def test_scheduler_twenty_seconds_fast_reaps_nothing_and_promotes_nothing_early(
    queue: RedisServer, single_redis: RedisServer, clocks: list[SkewedClock]
) -> None:
    tag, prefix = new_tag(), f"skew{new_tag()}"
    route = KeySpace(prefix).route(ROUTE)
    fast = SkewedClock(+20.0)
    clocks.append(fast)
    delay = 6.0
    with _fleet(queue, single_redis, prefix) as fleet, Client(queue.url, prefix=prefix) as c:
        fleet.spawn("scheduler", **fast.env())
        for _ in range(2):
            fleet.spawn(ENABLE_SCHEDULER="false")
        # Delayed jobs first, on idle workers: a promoter that reads a fast clock would
        # hand them over at once, 20 s before they are due.
        submitted = time.time()
        delayed = _submit(c, tag, 10, 0, delay=delay)
        first = ledger_key(tag, "first")
        eventually(lambda: raw(single_redis).hlen(first) == 10, 30, what=fleet.logs)
        ids = _submit(c, tag, JOBS, JOB_MS)
        wait_drained(raw(queue), route, fleet, timeout=90)
        result = outcome(raw(queue), raw(single_redis), tag, route, ids + delayed)
        firsts = raw(single_redis).hmget(first, delayed)
    early = [submitted + delay - float(t) for t in firsts if t and float(t) < submitted + delay]
    print("scheduler at +20 s:", result, "| delayed jobs run early by s:", early)
    assert (result.lost, result.duplicated, result.falsely_dead) == (0, 0, 0), result
    assert not early, f"{len(early)} delayed jobs ran early, up to {max(early):.1f}s"


def test_a_worker_whose_clock_jumps_twenty_seconds_reaps_no_live_job(
    queue: RedisServer, single_redis: RedisServer, clocks: list[SkewedClock]
) -> None:
    tag, prefix = new_tag(), f"skew{new_tag()}"
    route = KeySpace(prefix).route(ROUTE)
    jumpy = SkewedClock(0.0)
    clocks.append(jumpy)
    q, ledger = raw(queue), raw(single_redis)
    with _fleet(queue, single_redis, prefix) as fleet, Client(queue.url, prefix=prefix) as c:
        ids = _submit(c, tag, JOBS, JOB_MS)
        fleet.spawn()
        fleet.spawn(**jumpy.env())
        # Jump forward while both workers hold running jobs, then back past the start.
        eventually(lambda: ledger.hlen(ledger_key(tag, "first")) >= 10, 30, what=fleet.logs)
        jumpy.set(+20.0)
        time.sleep(JOB_MS / 1000)  # let the jumped clock run a lease renewal and a reap
        jumpy.set(-20.0)
        wait_drained(q, route, fleet, timeout=90)
        result = outcome(q, ledger, tag, route, ids)
    print("clock jump +20 s then -20 s:", result)
    assert (result.lost, result.duplicated, result.falsely_dead) == (0, 0, 0), result

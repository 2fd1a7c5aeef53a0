"""Skewed clocks (libfaketime): workers 20 s apart, a scheduler 20 s fast with delayed
jobs, and a worker whose clock jumps while it runs. Every deadline is Redis' clock, so
none of them may reap a live job or promote a delayed job early."""

from __future__ import annotations

import random
import time

from bananas import Client, JobSpec
from bananas.keys import KeySpace
from tests.apps.chaos_handlers import ledger_key
from tests.chaos.common import (
    ROUTE,
    Fleet,
    Report,
    Scale,
    Servers,
    new_tag,
    outcome,
    raw,
    wait_drained,
)
from tests.support.faketime import SkewedClock
from tests.support.servers import RedisServer
from tests.support.waiting import eventually

LEASE = "2s"
#: Each job holds its slot for several leases: a reaper misreading a deadline takes
#: it back while it runs.
JOB_MS = 2500
#: The default budget: a job reaped four times is dead-lettered as "worker lost".
RETRIES = 3
DELAY = 6.0


def _submit(client: Client, tag: str, n: int, ms: float, **options: object) -> list[str]:
    specs = [
        JobSpec("work", {"tag": tag, "n": i, "ms": ms}, max_retries=RETRIES, **options)
        for i in range(n)
    ]
    return client.submit_many(specs)


def _report(name: str, queue: RedisServer, servers: Servers, tag: str, prefix: str,
            ids: list[str], started: float, **details: object) -> Report:  # fmt: skip
    result = outcome(raw(queue), raw(servers.ledger), tag, KeySpace(prefix).route(ROUTE), ids)
    return Report(
        name, len(ids), result.lost, result.duplicated, 1, [], time.monotonic() - started,
        {"falsely dead-lettered": result.falsely_dead, "lost: why": list(result.why), **details},
        falsely_dead=result.falsely_dead,
    )  # fmt: skip


def skewed_workers(servers: Servers, scale: Scale, rng: random.Random) -> Report:
    """Two workers, one 20 s fast and one 20 s slow, drain ``skew_jobs`` long jobs."""
    tag, prefix = new_tag(), f"skew{new_tag()}"
    queue = RedisServer(servers.binary).start()
    fast, slow = SkewedClock(+20.0), SkewedClock(-20.0)
    started = time.monotonic()
    fleet = Fleet(queue.url, servers.ledger.url, prefix, LEASE_DURATION=LEASE)
    try:
        with Client(queue.url, prefix=prefix) as client:
            ids = _submit(client, tag, scale.skew_jobs, JOB_MS)
            fleet.spawn(**fast.env())
            fleet.spawn(**slow.env())
            wait_drained(raw(queue), KeySpace(prefix).route(ROUTE), fleet, timeout=600)
        return _report("workers at +20 s / -20 s", queue, servers, tag, prefix, ids, started)
    finally:
        fleet.close()
        queue.cleanup()
        fast.cleanup()
        slow.cleanup()


def skewed_scheduler(servers: Servers, scale: Scale, rng: random.Random) -> Report:
    """A ``bananas scheduler`` 20 s fast (the only reaper and promoter), exact workers;
    delayed jobs first, on idle workers, then ``skew_jobs`` long jobs."""
    tag, prefix = new_tag(), f"skew{new_tag()}"
    queue = RedisServer(servers.binary).start()
    fast = SkewedClock(+20.0)
    started = time.monotonic()
    fleet = Fleet(queue.url, servers.ledger.url, prefix, LEASE_DURATION=LEASE)
    try:
        with Client(queue.url, prefix=prefix) as client:
            fleet.spawn("scheduler", **fast.env())
            for _ in range(2):
                fleet.spawn(ENABLE_SCHEDULER="false")
            submitted = time.time()
            delayed = _submit(client, tag, 10, 0, delay=DELAY)
            first = ledger_key(tag, "first")
            eventually(lambda: raw(servers.ledger).hlen(first) == 10, 30, what=fleet.logs)
            ids = _submit(client, tag, scale.skew_jobs, JOB_MS)
            wait_drained(raw(queue), KeySpace(prefix).route(ROUTE), fleet, timeout=600)
            starts = raw(servers.ledger).hmget(first, delayed)
        early = [submitted + DELAY - float(t) for t in starts if t and float(t) < submitted + DELAY]
        return _report(
            "scheduler at +20 s", queue, servers, tag, prefix, ids + delayed, started,
            **{"delayed jobs run early (s early)": [round(e, 2) for e in early]},
        )  # fmt: skip
    finally:
        fleet.close()
        queue.cleanup()
        fast.cleanup()


def clock_jump(servers: Servers, scale: Scale, rng: random.Random) -> Report:
    """Two workers; one's clock jumps +20 s while it runs jobs, then to -20 s."""
    tag, prefix = new_tag(), f"skew{new_tag()}"
    queue = RedisServer(servers.binary).start()
    jumpy = SkewedClock(0.0)
    started = time.monotonic()
    fleet = Fleet(queue.url, servers.ledger.url, prefix, LEASE_DURATION=LEASE)
    try:
        with Client(queue.url, prefix=prefix) as client:
            ids = _submit(client, tag, scale.skew_jobs, JOB_MS)
            fleet.spawn()
            fleet.spawn(**jumpy.env())
            first = ledger_key(tag, "first")
            eventually(lambda: raw(servers.ledger).hlen(first) >= 10, 30, what=fleet.logs)
            jumpy.set(+20.0)
            time.sleep(JOB_MS / 1000)  # the fault itself: a renewal and a reap on the jump
            jumpy.set(-20.0)
            wait_drained(raw(queue), KeySpace(prefix).route(ROUTE), fleet, timeout=600)
        return _report("clock jump +20 s, -20 s", queue, servers, tag, prefix, ids, started)
    finally:
        fleet.close()
        queue.cleanup()
        jumpy.cleanup()

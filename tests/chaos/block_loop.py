"""A blocked event loop: an ``async def`` handler calls ``time.sleep`` for 2.5 leases
while other jobs share the worker. The watchdog thread must name the job, export the
metric and keep the leases alive, so nothing runs twice or is dead-lettered."""

from __future__ import annotations

import random
import time

from bananas import Client, JobSpec
from bananas.keys import KeySpace
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
from tests.support.processes import http_get
from tests.support.servers import RedisServer

LEASE_S = 2.0
BLOCK_MS = 5 * LEASE_S * 1000 // 2


def blocked_loop(servers: Servers, scale: Scale, rng: random.Random) -> Report:
    """Three workers; one job blocks its worker's loop for 5 s under a 2 s lease, beside
    ``block_jobs`` jobs of 200 ms."""
    tag, prefix = new_tag(), f"block{new_tag()}"
    route = KeySpace(prefix).route(ROUTE)
    queue = RedisServer(servers.binary).start()
    env = {"LEASE_DURATION": f"{LEASE_S}s", "WORKER_CONCURRENCY": "4", "JOB_TIMEOUT": "60s"}
    fleet = Fleet(queue.url, servers.ledger.url, prefix, **env)
    started = time.monotonic()
    try:
        with Client(queue.url, prefix=prefix) as client:
            workers = [fleet.spawn() for _ in range(3)]
            blocker = client.submit(
                "work", {"tag": tag, "n": -1, "block_ms": BLOCK_MS}, priority="high"
            )
            others = client.submit_many(
                JobSpec("work", {"tag": tag, "n": i, "ms": 200}) for i in range(scale.block_jobs)
            )
            wait_drained(raw(queue), route, fleet, timeout=600)
            logs = fleet.logs()
            metrics = "".join(http_get(w.port, "/metrics")[1] for w in workers)
        result = outcome(raw(queue), raw(servers.ledger), tag, route, [blocker, *others])
        named = any(blocker in line and "blocked" in line for line in logs.splitlines())
        return Report(
            "async handler blocks the loop",
            1 + len(others),
            result.lost,
            result.duplicated,
            1,
            [],
            time.monotonic() - started,
            {
                "falsely dead-lettered": result.falsely_dead,
                "a log line names the blocking job": named,
                "metric exported": "bananas_event_loop_blocked_seconds" in metrics,
            },
            falsely_dead=result.falsely_dead,
        )
    finally:
        fleet.close()
        queue.cleanup()

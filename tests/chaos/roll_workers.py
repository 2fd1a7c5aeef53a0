"""A graceful rolling restart of the whole fleet (SIGTERM, drain, replace): no job is
lost or duplicated."""

from __future__ import annotations

import random
import time

from bananas import Client
from bananas.keys import KeySpace
from tests.chaos.common import (
    ROUTE,
    Fleet,
    Report,
    Scale,
    Servers,
    counters,
    new_tag,
    raw,
    submit_all,
    tally,
    wait_drained,
    worker_env,
)
from tests.support.servers import RedisServer


def rollout(servers: Servers, scale: Scale, rng: random.Random) -> Report:
    """A rolling restart under load: for each worker in turn, start a replacement, then
    SIGTERM the old one and wait for it to exit (``scale.rollouts`` rounds).

    Recovery: how long each SIGTERMed worker took to drain and exit. Zero lost, zero
    duplicated, and no job started twice (nothing was cut short or reaped).
    """
    tag, prefix = new_tag(), f"chaos{new_tag()}"
    queue = RedisServer(servers.binary).start()
    route = KeySpace(prefix).route(ROUTE)
    fleet = Fleet(
        queue.url, servers.ledger.url, prefix, **worker_env(scale, SHUTDOWN_TIMEOUT="30s")
    )
    started = time.monotonic()
    try:
        q, ledger = raw(queue), raw(servers.ledger)
        with Client(queue.url, prefix=prefix) as client:
            ids = submit_all(client, tag, scale.jobs, scale.job_ms)
        workers = [fleet.spawn() for _ in range(scale.workers)]
        drains: list[float] = []
        codes: list[int | None] = []
        for _ in range(scale.rollouts):
            for slot, old in enumerate(list(workers)):
                time.sleep(rng.uniform(*scale.kill_every))  # the rollout's cadence
                workers[slot] = fleet.spawn()
                t = time.monotonic()
                codes.append(old.stop(60))
                drains.append(time.monotonic() - t)
        wait_drained(q, route, fleet, timeout=60 + scale.jobs * scale.job_ms / 1000)
        result = tally(q, ledger, tag, route, ids)
        restarted = [i for i in ids if result.starts.get(i, 0) > 1]
        stats = counters(q, route)
        return Report(
            "graceful rollout (SIGTERM)",
            len(ids),
            len(result.lost),
            result.duplicated,
            len(drains),
            drains,
            time.monotonic() - started,
            {
                "exit codes": sorted(set(codes)),
                "lost: why (first 5)": result.why,
                "jobs started more than once": len(restarted),
                "leases reaped": stats.get("reaped", 0),
                "acks accepted (stats completed)": stats.get("completed", 0),
            },
            acks=stats.get("completed", 0),
            dup_bound=0,
            max_runs=result.max_runs,
        )
    finally:
        fleet.close()
        queue.cleanup()


# -- scheduler failover ----------------------------------------------------------------------

"""Redis stalls (SIGSTOP) for longer than a lease: the workers go unready, and every
job completes after SIGCONT."""

from __future__ import annotations

import random
import signal
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
    counters,
    new_tag,
    raw,
    readyz,
    submit_all,
    tally,
    wait_drained,
    worker_env,
)
from tests.support.processes import http_get
from tests.support.servers import RedisServer
from tests.support.waiting import eventually


def redis_stall(servers: Servers, scale: Scale, rng: random.Random) -> Report:
    """Under load, Redis is SIGSTOPped for ``scale.stall_seconds`` (longer than a lease)
    and SIGCONTed. Besides a stream of short jobs, some jobs that outlast a lease are
    running when the stall begins: their renewals cannot land while Redis is frozen.
    Recovery: from SIGCONT until the queue is drained.

    Nothing may crash, no job may complete twice (one accepted ack per job), and a job
    may *run* twice only if its lease could lapse in the stall: it was leased before
    the stall ended (``details``: the latest first start of such a job, from SIGCONT).
    """
    tag, prefix = new_tag(), f"chaos{new_tag()}"
    queue = RedisServer(servers.binary).start()
    route = KeySpace(prefix).route(ROUTE)
    fleet = Fleet(queue.url, servers.ledger.url, prefix, **worker_env(scale))
    started = time.monotonic()
    try:
        q, ledger = raw(queue), raw(servers.ledger)
        n = min(scale.jobs, 3000)
        long_ms = (scale.stall_seconds + scale.lease) * 1000
        with Client(queue.url, prefix=prefix) as client:
            ids = submit_all(client, tag, n, scale.job_ms)
            procs = [fleet.spawn() for _ in range(scale.workers)]
            eventually(
                lambda: counters(q, route).get("completed", 0) >= n // 4, 60, what="1/4 done"
            )
            long_ids = client.submit_many(
                JobSpec("work", {"tag": tag, "ms": long_ms}, priority="high")
                for _ in range(scale.workers * scale.concurrency // 2)
            )
        ids += long_ids
        eventually(
            lambda: all(ledger.hmget(ledger_key(tag, "first"), long_ids)), 30, what="long jobs run"
        )
        assert queue.process is not None
        stop_wall = time.time()
        leased_before = q.zcard(route.leases)
        queue.process.send_signal(signal.SIGSTOP)
        try:
            time.sleep(scale.stall_seconds)  # the fault itself
            alive_during = [p.process is not None and p.process.poll() is None for p in procs]
            ready_during = [readyz(p) for p in procs]
        finally:
            queue.process.send_signal(signal.SIGCONT)
        cont_wall, cont = time.time(), time.monotonic()
        wait_drained(q, route, fleet, timeout=90)
        drained = time.monotonic() - cont
        result = tally(q, ledger, tag, route, ids)
        late = [result.first[i] - cont_wall for i in result.duplicated_jobs]
        stats = counters(q, route)
        alive = [p.process is not None and p.process.poll() is None for p in procs]
        health = [http_get(p.port, "/healthz")[0] for p in procs if alive[procs.index(p)]]
        return Report(
            "Redis SIGSTOP/SIGCONT",
            len(ids),
            len(result.lost),
            result.duplicated,
            1,
            [drained],
            time.monotonic() - started,
            {
                "stall s (lease s)": f"{scale.stall_seconds} ({scale.lease})",
                "jobs outlasting a lease, running at the stall": len(long_ids),
                "leased when the stall began": leased_before,
                "slots (workers x concurrency)": scale.workers * scale.concurrency,
                "jobs duplicated": len(result.duplicated_jobs),
                "most runs of one job": result.max_runs,
                "lost: why (first 5)": result.why,
                "latest first start of a duplicated job, s after SIGCONT": (
                    round(max(late), 3) if late else None
                ),
                "stall began, s before SIGCONT": round(cont_wall - stop_wall, 3),
                "acks accepted (stats completed)": stats.get("completed", 0),
                "leases reaped": stats.get("reaped", 0),
                "alive during / after": f"{sum(alive_during)}/{len(procs)} / {sum(alive)}",
                "/readyz during the stall": ready_during,
                "/healthz after": health,
            },
            acks=stats.get("completed", 0),
            dup_bound=leased_before,
            max_runs=result.max_runs,
        )
    finally:
        if queue.process is not None and queue.process.poll() is None:
            queue.process.send_signal(signal.SIGCONT)
        fleet.close()
        queue.cleanup()


# -- graceful rollout ------------------------------------------------------------------------

"""A full Redis: ``maxmemory`` with ``noeviction`` is reached while two workers drain a
backlog. New work (fetch, enqueue) must be refused, running work must finish, the
workers must say why they are not ready, and once memory is freed nothing may run twice
or be dead-lettered for it."""

from __future__ import annotations

import random
import time

import redis

from bananas import Client, JobSpec
from bananas.errors import RedisOutOfMemoryError
from bananas.keys import KeySpace
from tests.chaos.common import (
    ROUTE,
    Fleet,
    Report,
    Scale,
    Servers,
    counters,
    new_tag,
    outcome,
    raw,
    readyz,
    wait_drained,
)
from tests.support.processes import http_get
from tests.support.servers import RedisServer
from tests.support.waiting import eventually

MAXMEMORY = 24 * 1024 * 1024
FILLER = 256 * 1024
#: Room per job above MAXMEMORY: its record, then its result (kept with a copy of the
#: record for the default hour), so that the freed Redis can hold the whole drain.
ROOM_PER_JOB = 2048


def fill(r: redis.Redis) -> tuple[int, int]:
    """Write filler strings until Redis refuses one for lack of memory, then lower
    ``maxmemory`` a little under what is used, so that the few jobs finishing meanwhile
    cannot free enough to bring Redis back under its limit. Returns (fillers, limit)."""
    n = 0
    while True:
        try:
            r.set(f"filler:{n}", b"x" * FILLER)
        except redis.exceptions.OutOfMemoryError:
            break
        n += 1
    limit = int(r.info("memory")["used_memory"]) - 2 * 1024 * 1024
    r.config_set("maxmemory", limit)
    return n, limit


def full_redis(servers: Servers, scale: Scale, rng: random.Random) -> Report:
    """Two workers drain ``oom_jobs`` jobs of 20 ms; Redis is filled once 200 are done,
    held full until both workers report not ready, then freed."""
    tag, prefix = new_tag(), f"oom{new_tag()}"
    route = KeySpace(prefix).route(ROUTE)
    maxmemory = MAXMEMORY + scale.oom_jobs * ROOM_PER_JOB
    args = ["--maxmemory", str(maxmemory), "--maxmemory-policy", "noeviction"]
    queue = RedisServer(servers.binary, args).start()
    env = {"LEASE_DURATION": "2s", "WORKER_CONCURRENCY": "8", "RETRY_BACKOFF_MAX": "0.2s"}
    fleet = Fleet(queue.url, servers.ledger.url, prefix, **env)
    started = time.monotonic()
    q = raw(queue)
    try:
        with Client(queue.url, prefix=prefix) as client:
            specs = [JobSpec("work", {"tag": tag, "n": i, "ms": 20}) for i in range(scale.oom_jobs)]
            ids = client.submit_many(specs)
            workers = [fleet.spawn() for _ in range(2)]
            eventually(lambda: counters(q, route).get("completed", 0) >= 200, 60, what="work")
            fillers, limit = fill(q)
            full_at = time.monotonic()
            refusal = ""
            try:
                client.submit("work", {"tag": tag, "ms": 0})
            except RedisOutOfMemoryError as exc:
                refusal = str(exc)
            eventually(lambda: all(readyz(w) == 503 for w in workers), 30, what="/readyz 503")
            unready_after = time.monotonic() - full_at
            reasons = [http_get(w.port, "/readyz")[1].strip() for w in workers]
            done_in_oom = counters(q, route).get("completed", 0)
            q.delete(*(f"filler:{i}" for i in range(fillers)))
            q.config_set("maxmemory", maxmemory)
            freed = time.monotonic()
            eventually(lambda: all(readyz(w) == 200 for w in workers), 30, what="/readyz 200")
            ready_again = time.monotonic() - freed
            wait_drained(q, route, fleet, timeout=600)
        result = outcome(q, raw(servers.ledger), tag, route, ids)
        return Report(
            "maxmemory noeviction",
            len(ids),
            result.lost,
            result.duplicated,
            1,
            [ready_again],
            time.monotonic() - started,
            {
                "falsely dead-lettered": result.falsely_dead,
                "limit (bytes)": limit,
                "submit refused with": refusal,
                "/readyz 503 after s": round(unready_after, 2),
                "/readyz reasons": reasons,
                "completed when the workers went unready": done_in_oom,
                "lost: why": list(result.why),
            },
            falsely_dead=result.falsely_dead,
        )
    finally:
        fleet.close()
        queue.cleanup()

"""Worker crashes: SIGKILL a worker process at random while the fleet drains a
backlog; every job still completes, duplicated only where a killed worker held it."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import redis

from bananas import Client
from bananas.keys import KeySpace
from tests.apps.chaos_handlers import ledger_key
from tests.chaos.common import (
    ROUTE,
    Fleet,
    Report,
    Scale,
    Servers,
    counters,
    has_result,
    new_tag,
    raw,
    submit_all,
    tally,
    wait_drained,
    worker_env,
)
from tests.support.processes import WorkerProcess
from tests.support.servers import RedisServer
from tests.support.waiting import eventually


@dataclass
class Kill:
    """One SIGKILL: when, whom, what it held, how long until whole again."""

    at: float
    pid: int
    leased: list[str]
    victim_held: int
    restart: float = 0.0
    recovery: float = 0.0


def _victim_held(ledger: redis.Redis, tag: str, leased: list[str], pid: int) -> int:
    if not leased:
        return 0
    owners = ledger.hmget(ledger_key(tag, "owner"), leased)
    return sum(1 for owner in owners if owner == str(pid))


def crashes(servers: Servers, scale: Scale, rng: random.Random) -> Report:
    """``scale.workers`` workers drain ``scale.jobs`` jobs while a random one is SIGKILLed
    (and a replacement started) every ``kill_every`` seconds, until the queue is empty.

    Recovery of a kill: from the SIGKILL until every job leased at that instant (the
    victim's included, which wait for their lease to expire and the reaper) has a
    result. ``details`` has the replacement start-up times and, per kill, how many
    leased jobs had last been started by the victim: duplicates can only come from those.
    """
    tag, prefix = new_tag(), f"chaos{new_tag()}"
    queue = RedisServer(servers.binary).start()
    route = KeySpace(prefix).route(ROUTE)
    fleet = Fleet(queue.url, servers.ledger.url, prefix, **worker_env(scale))
    started = time.monotonic()
    try:
        with Client(queue.url, prefix=prefix) as client:
            ids = submit_all(client, tag, scale.jobs, scale.job_ms)
        workers = [fleet.spawn() for _ in range(scale.workers)]
        kills: list[Kill] = []
        booting: list[tuple[WorkerProcess, Kill]] = []
        q, ledger = raw(queue), raw(servers.ledger)
        next_kill = time.monotonic() + rng.uniform(*scale.kill_every)

        def recovered() -> bool:
            now = time.monotonic()
            for proc, kill in list(booting):
                if proc.ready():
                    kill.restart = now - kill.at
                    booting.remove((proc, kill))
            for kill in kills:
                if not kill.recovery and kill.leased:
                    kill.leased = sorted(set(kill.leased) - has_result(q, route, kill.leased))
                    if not kill.leased:
                        kill.recovery = now - kill.at
            return not booting and all(k.recovery for k in kills)

        def tick() -> None:
            nonlocal next_kill
            recovered()
            now = time.monotonic()
            up = [i for i, w in enumerate(workers) if all(w is not b for b, _ in booting)]
            if now < next_kill or not up:
                return
            slot = rng.choice(up)  # a worker that has finished starting
            victim = workers[slot]
            victim.kill()
            at = time.monotonic()
            leased = q.zrange(route.leases, 0, -1)
            kill = Kill(at, victim.pid, leased, _victim_held(ledger, tag, leased, victim.pid))
            if not leased:
                kill.recovery = 1e-9
            kills.append(kill)
            workers[slot] = fleet.spawn(wait_ready=False)
            booting.append((workers[slot], kill))
            next_kill = time.monotonic() + rng.uniform(*scale.kill_every)

        wait_drained(q, route, fleet, timeout=60 + scale.jobs * scale.job_ms / 1000, tick=tick)
        eventually(recovered, 30, what="every kill recovered")
        result = tally(q, ledger, tag, route, ids)
        stats = counters(q, route)
        held = sum(k.victim_held for k in kills)
        return Report(
            "worker SIGKILL",
            len(ids),
            len(result.lost),
            result.duplicated,
            len(kills),
            [k.recovery for k in kills],
            time.monotonic() - started,
            {
                "workers x concurrency": f"{scale.workers} x {scale.concurrency}",
                "lease": f"{scale.lease}s",
                "jobs duplicated": len(result.duplicated_jobs),
                "lost: why (first 5)": result.why,
                "held by the victims at their kill (bound on duplicates)": held,
                "concurrency x kills": scale.concurrency * len(kills),
                "acks accepted (stats completed)": stats.get("completed", 0),
                "leases reaped": stats.get("reaped", 0),
                "dead-lettered": stats.get("failed", 0),
                "replacement ready s (max)": round(max((k.restart for k in kills), default=0), 2),
            },
            acks=stats.get("completed", 0),
            dup_bound=held,
            max_runs=result.max_runs,
        )
    finally:
        fleet.close()
        queue.cleanup()


# -- Redis restart with AOF ------------------------------------------------------------------

"""Workflows under worker crashes: a chord's callback runs once with every member's
result, and a chain runs every step in order, while workers are SIGKILLed.

Both scenarios drive ``scale.workers`` real ``bananas worker`` processes and SIGKILL a
random one (starting a replacement) every ``kill_every`` seconds. A killed worker
loses whatever it held: handlers mid-run, and steps whose ``workflow_advance`` ran but
whose ack did not; their leases expire, the jobs run again, and the workflow's
bookkeeping must count each once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import redis

from bananas import Client, chain, chord, group, task
from bananas.keys import KeySpace
from tests.apps.chaos_handlers import ledger_key
from tests.chaos.common import (
    MAX_RETRIES,
    POLL,
    ROUTE,
    Fleet,
    Report,
    Scale,
    Servers,
    counters,
    new_tag,
    raw,
    worker_env,
)
from tests.support.processes import WorkerProcess
from tests.support.servers import RedisServer
from tests.support.waiting import eventually

#: The routing key of the chord's callback: its ``enqueued`` counter counts its enqueues.
FANIN = "fanin"


class Killer:
    """SIGKILLs a random ready worker every ``kill_every`` seconds and starts a replacement."""

    def __init__(self, fleet: Fleet, scale: Scale, rng: random.Random) -> None:
        self.fleet, self.scale, self.rng = fleet, scale, rng
        self.workers: list[WorkerProcess] = [fleet.spawn() for _ in range(scale.workers)]
        self.kills = 0
        self.next_kill = time.monotonic() + rng.uniform(*scale.kill_every)

    def tick(self) -> None:
        if time.monotonic() < self.next_kill:
            return
        up = [i for i, w in enumerate(self.workers) if w.ready()]
        if not up:
            return
        slot = self.rng.choice(up)
        self.workers[slot].kill()
        self.kills += 1
        self.workers[slot] = self.fleet.spawn(wait_ready=False)
        self.next_kill = time.monotonic() + self.rng.uniform(*self.scale.kill_every)


def _status(q: redis.Redis, prefix: str, wf_id: str) -> str:
    return q.hget(KeySpace(prefix).workflow(wf_id).meta, "status") or ""


def _run_until_done(
    q: redis.Redis, prefix: str, wf_id: str, fleet: Fleet, timeout: float, tick: Callable[[], None]
) -> None:
    def done() -> bool:
        if _status(q, prefix, wf_id) in ("completed", "failed", "cancelled"):
            return True
        tick()
        return False

    eventually(done, timeout, interval=POLL, what=lambda: f"workflow {wf_id}\n{fleet.logs()}")


def chord_crashes(servers: Servers, scale: Scale, rng: random.Random) -> Report:
    """A chord of ``scale.wf_members`` members; kills until every member has completed
    once (so that a kill can't legitimately re-run the callback itself), then the
    callback must have been enqueued once, run once, and received every result in order."""
    tag, prefix, n = new_tag(), f"chaos{new_tag()}", scale.wf_members
    queue = RedisServer(servers.binary).start()
    env = worker_env(scale, WORKER_ROUTING_KEYS=f"{ROUTE},{FANIN}")
    fleet = Fleet(queue.url, servers.ledger.url, prefix, **env)
    started = time.monotonic()
    try:
        q, ledger = raw(queue), raw(servers.ledger)
        killer = Killer(fleet, scale, rng)
        members = group(
            task(
                "wf_member", {"tag": tag, "i": i, "ms": scale.wf_member_ms}, max_retries=MAX_RETRIES
            )
            for i in range(n)
        )
        callback = task(
            "wf_callback", {"tag": tag, "n": n}, routing_key=FANIN, max_retries=MAX_RETRIES
        )
        with Client(queue.url, prefix=prefix) as client:
            wf_id = client.submit_workflow(chord(members, callback))

            def tick() -> None:
                if ledger.hlen(ledger_key(tag, "runs")) < n:
                    killer.tick()

            budget = 120 + n * scale.wf_member_ms / 1000 / scale.concurrency
            _run_until_done(q, prefix, wf_id, fleet, budget, tick)
            info = client.get_workflow(wf_id)
        assert info is not None
        runs = {k: int(v) for k, v in ledger.hgetall(ledger_key(tag, "runs")).items()}
        cb = ledger.hgetall(ledger_key(tag, "callback"))
        members_stats = counters(q, KeySpace(prefix).route(ROUTE))
        fanin_stats = counters(q, KeySpace(prefix).route(FANIN))
        count = int(cb.get("count", 0))
        return Report(
            "workflow chord SIGKILL",
            n,
            n - count if cb.get("ok") == "1" else n,
            sum(r - 1 for r in runs.values()),
            killer.kills,
            [],
            time.monotonic() - started,
            {
                "workflow status": info.status.value,
                "callback enqueued": fanin_stats.get("enqueued", 0),
                "callback starts": int(cb.get("starts", 0)),
                "callback completed runs": int(cb.get("runs", 0)),
                "callback got every result in order": cb.get("ok") == "1",
                "callback result": info.result,
                "members run (distinct)": len(runs),
                "member leases reaped": members_stats.get("reaped", 0),
                "workers x concurrency": f"{scale.workers} x {scale.concurrency}",
            },
            acks=fanin_stats.get("completed", 0) + members_stats.get("completed", 0),
            max_runs=max(runs.values(), default=0),
        )
    finally:
        fleet.close()
        queue.cleanup()


def chain_crashes(servers: Servers, scale: Scale, rng: random.Random) -> Report:
    """A chain of ``scale.wf_steps`` steps with kills throughout: every step starts only
    after the one before it completed, and receives that step's result."""
    tag, prefix, n = new_tag(), f"chaos{new_tag()}", scale.wf_steps
    queue = RedisServer(servers.binary).start()
    fleet = Fleet(queue.url, servers.ledger.url, prefix, **worker_env(scale))
    started = time.monotonic()
    try:
        q, ledger = raw(queue), raw(servers.ledger)
        killer = Killer(fleet, scale, rng)
        steps = chain(
            task("wf_step", {"tag": tag, "i": i, "ms": scale.wf_step_ms}, max_retries=MAX_RETRIES)
            for i in range(n)
        )
        with Client(queue.url, prefix=prefix) as client:
            wf_id = client.submit_workflow(steps)
            budget = 120 + n * scale.wf_step_ms / 1000 * 3
            _run_until_done(q, prefix, wf_id, fleet, budget, killer.tick)
            info = client.get_workflow(wf_id)
        assert info is not None
        order = [entry.split(":", 1) for entry in ledger.lrange(ledger_key(tag, "order"), 0, -1)]
        first: list[int] = []
        wrong_parent = 0
        for i_text, parents in order:
            i = int(i_text)
            if i not in first:
                first.append(i)
            if parents != ("[]" if i == 0 else f"[{i - 1}]"):
                wrong_parent += 1
        in_order = first == list(range(n))
        runs = {k: int(v) for k, v in ledger.hgetall(ledger_key(tag, "runs")).items()}
        return Report(
            "workflow chain SIGKILL",
            n,
            n - len(runs),
            sum(r - 1 for r in runs.values()),
            killer.kills,
            [],
            time.monotonic() - started,
            {
                "workflow status": info.status.value,
                "workflow result": info.result,
                "steps first started in order": in_order,
                "starts with a wrong parent result": wrong_parent,
                "step starts": len(order),
                "workers x concurrency": f"{scale.workers} x {scale.concurrency}",
            },
            max_runs=max(runs.values(), default=0),
        )
    finally:
        fleet.close()
        queue.cleanup()

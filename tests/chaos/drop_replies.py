"""Lost replies: a proxy between a worker and Redis lets a command run and throws its
reply away. With ``max_retries=0`` any job left leased to nobody would be dead-lettered
"lease expired 1 times" without ever running.

- ``lost-replies``: the fetch script's replies (the first fetch's jobs must come back).
- ``lost-handoffs``: the idle worker's blocking pop of its hand-off list (single hop):
  jobs are submitted one at a time, each after the last finished, so that every one is
  leased by its submit to the idle worker and the reply lost is a job of its."""

from __future__ import annotations

import contextlib
import random
import time

from bananas import Client, JobSpec, WaitTimeoutError
from bananas.keys import KeySpace
from bananas.ops import Script
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
    wait_drained,
)
from tests.support.proxy import ReplyDroppingProxy
from tests.support.servers import RedisServer

DROP_RATE = 0.15


def dropped_fetch_replies(servers: Servers, scale: Scale, rng: random.Random) -> Report:
    """One worker behind the proxy drains ``reply_jobs`` 5 ms jobs; 15 % of its fetch
    replies are dropped after the script ran."""
    tag, prefix = new_tag(), f"lost{new_tag()}"
    route = KeySpace(prefix).route(ROUTE)
    queue = RedisServer(servers.binary).start()
    proxy = ReplyDroppingProxy(queue.port, Script("fetch").sha.encode(), 0.0, rng).start()
    fleet = Fleet(proxy.url, servers.ledger.url, prefix, LEASE_DURATION="2s")
    started = time.monotonic()
    try:
        with Client(queue.url, prefix=prefix) as client:
            fleet.spawn()
            proxy.drop_rate = DROP_RATE
            ids = client.submit_many(
                JobSpec("work", {"tag": tag, "n": i, "ms": 5}, max_retries=0)
                for i in range(scale.reply_jobs)
            )
            wait_drained(raw(queue), route, fleet, timeout=600)
        result = outcome(raw(queue), raw(servers.ledger), tag, route, ids)
        return Report(
            "lost fetch replies",
            len(ids),
            result.lost,
            result.duplicated,
            proxy.dropped,
            [],
            time.monotonic() - started,
            {
                "replies dropped / fetches seen": f"{proxy.dropped} / {proxy.seen}",
                "falsely dead-lettered": result.falsely_dead,
                "lost: why": list(result.why),
                "stats": counters(raw(queue), route),
            },
            falsely_dead=result.falsely_dead,
        )
    finally:
        fleet.close()
        proxy.close()
        queue.cleanup()


def dropped_handoff_replies(servers: Servers, scale: Scale, rng: random.Random) -> Report:
    """One idle worker behind the proxy runs ``reply_jobs // 3`` jobs submitted one at a
    time; 15 % of its hand-off pops (the blocking pops naming a hand-off list) lose
    their reply after Redis answered."""
    tag, prefix = new_tag(), f"lh{new_tag()}"
    route = KeySpace(prefix).route(ROUTE)
    queue = RedisServer(servers.binary).start()
    proxy = ReplyDroppingProxy(queue.port, b":handoff:", 0.0, rng).start()
    fleet = Fleet(proxy.url, servers.ledger.url, prefix, LEASE_DURATION="2s")
    started = time.monotonic()
    ids: list[str] = []
    try:
        with Client(queue.url, prefix=prefix) as client:
            fleet.spawn()
            proxy.drop_rate = DROP_RATE
            for i in range(scale.reply_jobs // 3):
                job_id = client.submit("work", {"tag": tag, "n": i, "ms": 1}, max_retries=0)
                ids.append(job_id)
                with contextlib.suppress(WaitTimeoutError):  # (counted as lost below)
                    client.wait_for_result(job_id, timeout=30)
            wait_drained(raw(queue), route, fleet, timeout=120)
        result = outcome(raw(queue), raw(servers.ledger), tag, route, ids)
        stats = counters(raw(queue), route)
        return Report(
            "lost hand-off replies",
            len(ids),
            result.lost,
            result.duplicated,
            proxy.dropped,
            [],
            time.monotonic() - started,
            {
                "replies dropped / hand-off pops seen": f"{proxy.dropped} / {proxy.seen}",
                "jobs handed by their submit": stats.get("handed", 0),
                "falsely dead-lettered": result.falsely_dead,
                "lost: why": list(result.why),
                "stats": stats,
            },
            falsely_dead=result.falsely_dead,
        )
    finally:
        fleet.close()
        proxy.close()
        queue.cleanup()

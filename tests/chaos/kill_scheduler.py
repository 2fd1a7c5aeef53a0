"""Scheduler-process failover: kill the leading ``bananas scheduler`` and a new
leader takes over; every cron slot fires once."""

from __future__ import annotations

import random
import time
from typing import Any

import orjson

from bananas import Client, Schedule
from bananas.keys import KeySpace
from tests.chaos.common import ROUTE, Fleet, Report, Scale, Servers, counters, new_tag, raw
from tests.support.servers import RedisServer
from tests.support.waiting import eventually


def scheduler_failover(servers: Servers, scale: Scale, rng: random.Random) -> Report:
    """Two ``bananas scheduler`` processes (LEADER_ELECTION=redis, LEASE_DURATION=3s);
    the leader is SIGKILLed ``scale.leader_kills`` times (a replacement standby is started
    each time). Recovery: from the SIGKILL until the standby holds the leader lock.

    With ``scale.cron_minutes`` > 0, a ``* * * * *`` schedule registered in Redis runs for
    that many real minutes across the kills and every minute slot must be fired once,
    none skipped (its starting deadline, 30 s, is far longer than a failover).
    """
    prefix = f"chaos{new_tag()}"
    queue = RedisServer(servers.binary).start()
    keys = KeySpace(prefix)
    fleet = Fleet(
        queue.url,
        servers.ledger.url,
        prefix,
        LEADER_ELECTION="redis",
        LEASE_DURATION="3s",
        SCHEDULER_INTERVAL="0.2s",
    )
    started = time.monotonic()
    try:
        q = raw(queue)
        schedule_id = "minutely"
        if scale.cron_minutes:
            with Client(queue.url, prefix=prefix) as client:
                client.register_schedule(
                    Schedule(
                        id=schedule_id,
                        cron="* * * * *",
                        job="work",
                        payload={"tag": "cron"},
                        starting_deadline_seconds=30,
                    )
                )
        names = iter(f"sched-{i}" for i in range(100))
        procs = {}
        for _ in range(2):
            name = next(names)
            procs[name] = fleet.spawn("scheduler", POD_NAME=name)
        lock = keys.leader("bananas-scheduler")
        fence = keys.leader_fence("bananas-scheduler")
        takeovers: list[float] = []
        tokens: list[int] = []
        end = time.monotonic() + scale.cron_minutes * 60
        kills = 0
        while kills < scale.leader_kills or time.monotonic() < end:
            leader = str(eventually(lambda: q.get(lock), 15, what="a leader"))
            tokens.append(int(q.get(fence) or 0))
            if scale.cron_minutes:
                time.sleep(rng.uniform(20, 40))  # lead a while: slots fire meanwhile
            procs.pop(leader).kill()
            t = time.monotonic()
            eventually(lambda old=leader: (q.get(lock) or old) != old, 15, what="a new leader")
            takeovers.append(time.monotonic() - t)
            kills += 1
            name = next(names)
            procs[name] = fleet.spawn("scheduler", POD_NAME=name)
        tokens.append(int(q.get(fence) or 0))
        details: dict[str, Any] = {"fencing tokens": tokens, "lease": "3s"}
        slots, missing, fired_twice = 0, 0, 0
        if scale.cron_minutes:
            route = keys.route(ROUTE)
            fired = sorted(
                int(j.rsplit(":", 1)[1]) for j in q.hkeys(route.jobs) if j.startswith("cron:")
            )
            slots = len(fired)
            expected = set(range(fired[0], fired[-1] + 60, 60)) if fired else set()
            missing = len(expected - set(fired))
            fired_twice = int(counters(q, route).get("enqueued", 0)) - slots
            status = orjson.loads(q.hget(keys.schedule_status, schedule_id) or "{}")
            details |= {
                "minute slots fired": slots,
                "slots missing between the first and the last": missing,
                "enqueued beyond one per slot": fired_twice,
                "status run_count / skipped_count": (
                    f"{status.get('run_count')} / {status.get('skipped_count')}"
                ),
            }
        return Report(
            "scheduler leader SIGKILL",
            slots,
            missing,
            fired_twice,
            kills,
            takeovers,
            time.monotonic() - started,
            details,
        )
    finally:
        fleet.close()
        queue.cleanup()

"""Redis restarts with AOF on while a producer submits: nothing the client was told
was stored is lost, and the workers go unready and ready again."""

from __future__ import annotations

import random
import threading
import time
import uuid
from typing import Any

from bananas import Client
from bananas.errors import BananasError
from bananas.keys import KeySpace
from tests.chaos.common import (
    MAX_RETRIES,
    ROUTE,
    Fleet,
    Report,
    Scale,
    Servers,
    counters,
    new_tag,
    raw,
    readyz,
    tally,
    wait_drained,
    worker_env,
)
from tests.support.processes import http_get
from tests.support.servers import RedisServer
from tests.support.waiting import eventually


class Producer(threading.Thread):
    """Submits ``work`` jobs at a steady rate; a submit that fails is retried with the same
    job id (enqueue is idempotent by id) until Redis takes it. ``acked`` holds (job id,
    wall time Redis acknowledged it); one job in ten is delayed by 1.5 s so the promoters'
    recovery is exercised too."""

    def __init__(self, url: str, prefix: str, tag: str, rate: float, ms: float) -> None:
        super().__init__(name="chaos-producer", daemon=True)
        self.client = Client(url, prefix=prefix)
        self.tag, self.rate, self.ms = tag, rate, ms
        self.acked: list[tuple[str, float]] = []
        self.failures = 0
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        interval = 1 / self.rate
        next_at = time.monotonic()
        while not self.stop.is_set():
            job_id = f"p{n}-{uuid.uuid4().hex[:8]}"
            delay = 1.5 if n % 10 == 0 else None
            if not self._submit_until_stored(
                job_id, {"tag": self.tag, "n": n, "ms": self.ms}, delay
            ):
                return
            self.acked.append((job_id, time.time()))
            n += 1
            next_at += interval
            pause = next_at - time.monotonic()
            if pause > 0:
                self.stop.wait(pause)
            else:
                next_at = time.monotonic()

    def _submit_until_stored(
        self, job_id: str, payload: dict[str, Any], delay: float | None
    ) -> bool:
        backoff = 0.02
        while not self.stop.is_set():  # a scenario that failed must not leave it spinning
            try:
                self.client.submit(
                    "work", payload, job_id=job_id, delay=delay, max_retries=MAX_RETRIES
                )
                return True
            except BananasError:
                self.failures += 1
                time.sleep(backoff)
                backoff = min(backoff * 2, 0.5)
        return False

    def finish(self) -> None:
        self.stop.set()
        self.join(30)
        self.client.close()


def redis_restart(servers: Servers, scale: Scale, rng: random.Random) -> Report:
    """Redis runs with ``--appendonly yes --appendfsync everysec``; under a steady stream
    of submits (one producer thread) and two workers plus a ``bananas scheduler``, it is
    SIGKILLed and restarted on the same port and data folder, ``scale.restarts`` times.

    Recovery of a restart: from the moment Redis accepts connections again until the
    last process reports ``/readyz`` 200 again (each one reconnects with backoff on its
    own). A job is *lost* if the producer was told it was stored and it never completed;
    ``details`` gives how long before its kill each lost job was acknowledged.
    """
    tag, prefix = new_tag(), f"chaos{new_tag()}"
    queue = RedisServer(servers.binary, ["--appendonly", "yes", "--appendfsync", "everysec"])
    queue.start()
    route = KeySpace(prefix).route(ROUTE)
    fleet = Fleet(queue.url, servers.ledger.url, prefix, **worker_env(scale))
    producer = Producer(queue.url, prefix, tag, scale.submit_rate, scale.job_ms)
    started = time.monotonic()
    try:
        procs = [fleet.spawn() for _ in range(2)]
        procs.append(fleet.spawn("scheduler", SCHEDULER_INTERVAL="0.2s"))
        producer.start()
        kills_wall: list[float] = []
        recovery: list[float] = []
        went_unready: list[float] = []
        for _ in range(scale.restarts):
            time.sleep(scale.load_seconds)  # load before the fault
            kills_wall.append(time.time())
            down = time.monotonic()
            queue.stop()  # SIGKILL
            eventually(lambda: all(readyz(p) == 503 for p in procs), 20, what="every /readyz false")
            went_unready.append(time.monotonic() - down)
            queue.start()
            up = time.monotonic()
            eventually(lambda: all(readyz(p) == 200 for p in procs), 30, what="every /readyz true")
            recovery.append(time.monotonic() - up)
        time.sleep(scale.load_seconds)  # load after the last fault
        producer.finish()
        q, ledger = raw(queue), raw(servers.ledger)
        wait_drained(q, route, fleet, timeout=60)
        ids = [job_id for job_id, _ in producer.acked]
        result = tally(q, ledger, tag, route, ids)
        acked_at = dict(producer.acked)
        windows = []
        for job_id in result.lost:
            before = [k - acked_at[job_id] for k in kills_wall if k >= acked_at[job_id]]
            windows.append(round(min(before), 3) if before else None)
        alive = [p.process is not None and p.process.poll() is None for p in procs]
        health = [http_get(p.port, "/healthz")[0] for p in procs if p.process.poll() is None]
        return Report(
            "Redis SIGKILL + restart (AOF everysec)",
            len(ids),
            len(result.lost),
            result.duplicated,
            len(kills_wall),
            recovery,
            time.monotonic() - started,
            {
                "submits that failed and were retried (same id)": producer.failures,
                "s from kill until every /readyz was false": [round(x, 2) for x in went_unready],
                "lost: s acknowledged before the kill": windows,
                "jobs duplicated": len(result.duplicated_jobs),
                "lost: why (first 5)": result.why,
                "delayed jobs (promoted after the restarts)": len(ids[::10]),
                "processes alive at the end": f"{sum(alive)}/{len(alive)}",
                "/healthz at the end": health,
            },
            acks=counters(q, route).get("completed", 0),
            max_runs=result.max_runs,
        )
    finally:
        producer.stop.set()
        if producer.is_alive():
            producer.join(10)
        producer.client.close()
        fleet.close()
        queue.cleanup()


# -- Redis stall -----------------------------------------------------------------------------

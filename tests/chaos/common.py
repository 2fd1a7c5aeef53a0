"""What every chaos scenario shares: scales, reports, the worker fleet, ledger tallies."""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis

from bananas import Client, JobSpec
from bananas.keys import RouteKeys
from tests.apps.chaos_handlers import ledger_key
from tests.support.processes import WorkerProcess, http_get
from tests.support.servers import RedisServer
from tests.support.waiting import eventually

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
    #: Jobs of 2.5 s run by skewed workers (each holds its slot for several leases).
    skew_jobs: int = 30
    #: Jobs drained through a proxy that drops fetch replies.
    reply_jobs: int = 600
    #: Jobs drained while Redis is filled to its maxmemory.
    oom_jobs: int = 3000
    #: Other jobs running beside a handler that blocks the event loop.
    block_jobs: int = 24
    #: The workflow scenarios: chord members and their milliseconds, chain steps and theirs.
    wf_members: int = 1000
    wf_member_ms: float = 150.0
    wf_steps: int = 20
    wf_step_ms: float = 300.0


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
    skew_jobs=300,
    reply_jobs=5000,
    oom_jobs=30000,
    block_jobs=500,
    wf_members=10_000,
    wf_member_ms=100.0,
    wf_steps=50,
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
    #: Jobs in the dead-letter queue although their handler never failed.
    falsely_dead: int = 0

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


@dataclass(frozen=True)
class Outcome:
    """The three numbers every fault test of round two reports on one set of jobs."""

    jobs: int
    #: The client was told the job was stored and it never completed.
    lost: int
    #: Completed runs beyond one per job.
    duplicated: int
    #: Jobs in the dead-letter queue although their handler never failed.
    falsely_dead: int
    #: Why the first lost jobs are not completed (their last error).
    why: tuple[str, ...] = ()

    def __str__(self) -> str:
        return (
            f"{self.jobs} jobs: {self.lost} lost, {self.duplicated} duplicated, "
            f"{self.falsely_dead} falsely dead-lettered"
            + (f" (why: {list(self.why)})" if self.why else "")
        )


def dead_ids(r: redis.Redis, route: RouteKeys) -> set[str]:
    return set(r.zrange(route.dead, 0, -1))


def outcome(
    queue: redis.Redis, ledger: redis.Redis, tag: str, route: RouteKeys, ids: list[str]
) -> Outcome:
    """Lost, duplicated and falsely dead-lettered among ``ids`` (jobs of ``work``, whose
    handler never fails: any of them in the dead-letter queue is there by mistake)."""
    result = tally(queue, ledger, tag, route, ids)
    dead = dead_ids(queue, route) & set(ids)
    return Outcome(len(ids), len(result.lost), result.duplicated, len(dead), tuple(result.why))

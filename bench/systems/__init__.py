"""The systems under test: one adapter module each, and the catalogue below.

An adapter module ``bench/systems/<name>.py`` runs inside its system's
virtual environment and provides:

``PACKAGES``                 distributions whose versions are reported;
``run_worker(spec, probe)``  build one worker process as the system intends
                             it to be run, register one handler that calls the
                             probe, call ``probe.ready()`` as it starts
                             consuming, and block until SIGTERM;
``make_client(spec)``        return a :class:`bench.systems._client.Client`.

asynq has no Python module: its adapter is the Go program in ``bench/asynq``,
which speaks the same protocol.

This module is imported in every environment, so it uses the standard library
only. The catalogue records, per system, what the driver has to know without
asking the adapter: which environment it runs in, how many jobs one worker
process runs at once, which optional scenarios it supports, and the settings
that differ from the library's defaults (also listed in
``docs/benchmarks-method.md``).
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class System:
    """What the driver knows about one system."""

    name: str
    env: str
    """``project`` (Bananas' own venv), ``peers``, ``arq`` or ``go``."""
    concurrency: int
    """Jobs one worker process runs at once, as configured here."""
    model: str
    """How one worker process runs its jobs."""
    bulk: bool
    """Has a bulk submit API."""
    results: bool
    """Can submit a job and wait for its result."""
    delayed: bool
    """Can run a job at a given time."""
    delayed_slack_s: float
    """How late a delayed job may run by design (scheduler period), on top of
    the normal wait; sets the delayed scenario's deadline."""
    recovery: str
    """How jobs held by a killed worker come back, per the library's docs."""
    settings: str
    """Settings that differ from the library's defaults."""


CATALOGUE: dict[str, System] = {
    s.name: s
    for s in (
        System(
            name="bananas",
            env="project",
            concurrency=10,
            model="asyncio, concurrency=10, leases only as many jobs as free slots",
            bulk=True,
            results=True,
            delayed=True,
            delayed_slack_s=5.0,
            recovery="10 s leases renewed by heartbeat; a reaper requeues expired ones",
            settings="metrics server and cron scheduler off; success_ttl=0 (result kept "
            "only briefly, for a waiter) except in the round-trip scenario",
        ),
        System(
            name="celery",
            env="peers",
            concurrency=10,
            model="threads pool, 10 threads (prefetch multiplier 4)",
            bulk=False,
            results=True,
            delayed=True,
            delayed_slack_s=5.0,
            recovery="acks_late: unacked messages restored after visibility_timeout (1 h)",
            settings="pool=threads; task_acks_late; without mingle/gossip/heartbeat; "
            "results only in the round-trip scenario (Redis backend)",
        ),
        System(
            name="rq",
            env="peers",
            concurrency=1,
            model="SimpleWorker: one job at a time in the worker process (no fork)",
            bulk=True,
            results=True,
            delayed=True,
            delayed_slack_s=5.0,
            recovery="abandoned jobs are moved to the failed registry, not re-run",
            settings="SimpleWorker; result_ttl=0 except in the round-trip scenario; "
            "the scheduler (with_scheduler) only in the delayed scenario",
        ),
        System(
            name="arq",
            env="arq",
            concurrency=10,
            model="asyncio, max_jobs=10",
            bulk=False,
            results=True,
            delayed=True,
            delayed_slack_s=5.0,
            recovery="job stays queued; re-run once its in-progress key expires "
            "(job timeout 300 s + 10 s)",
            settings="max_jobs=10; keep_result=0 except in the round-trip scenario",
        ),
        System(
            name="saq",
            env="peers",
            concurrency=10,
            model="asyncio, concurrency=10",
            bulk=False,
            results=True,
            delayed=True,
            delayed_slack_s=5.0,
            recovery="sweep every 60 s aborts stuck jobs; not re-run by default",
            settings="concurrency=10; job ttl=-1 (deleted when done) except in the "
            "round-trip scenario",
        ),
        System(
            name="dramatiq",
            env="peers",
            concurrency=10,
            model="10 worker threads (one consumer thread prefetching)",
            bulk=False,
            results=True,
            delayed=True,
            delayed_slack_s=5.0,
            recovery="unacked messages of a worker silent for 60 s are requeued by a "
            "maintenance pass that runs on 1 in 1,000 broker commands",
            settings="worker_threads=10; max_retries=0; Results middleware only in "
            "the round-trip scenario",
        ),
        System(
            name="taskiq",
            env="peers",
            concurrency=10,
            model="asyncio receiver, max_async_tasks=10",
            bulk=False,
            results=True,
            delayed=True,
            delayed_slack_s=75.0,
            recovery="none: ListQueueBroker pops with BRPOP, no acknowledgement",
            settings="ListQueueBroker; max_async_tasks=10; RedisAsyncResultBackend only "
            "in the round-trip scenario; delayed jobs through ListRedisScheduleSource "
            "and a scheduler task in the worker process",
        ),
        System(
            name="huey",
            env="peers",
            concurrency=10,
            model="consumer with 10 worker threads",
            bulk=False,
            results=True,
            delayed=True,
            delayed_slack_s=5.0,
            recovery="none: BRPOP without acknowledgement",
            settings="RedisHuey; workers=10, worker_type=thread; results=False except "
            "in the round-trip scenario",
        ),
        System(
            name="asynq",
            env="go",
            concurrency=10,
            model="Go server, Concurrency=10",
            bulk=False,
            results=False,
            delayed=True,
            delayed_slack_s=10.0,
            recovery="30 s lease, recoverer every minute requeues expired leases",
            settings="Concurrency=10; otherwise defaults",
        ),
    )
}

ORDER = tuple(CATALOGUE)
"""Systems in report order: Bananas first, then the peers."""

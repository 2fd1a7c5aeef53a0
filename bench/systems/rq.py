"""RQ adapter: a ``SimpleWorker`` running one job at a time in its own process.

RQ's default ``Worker`` forks a child per job; ``SimpleWorker`` runs the job
in the worker process, which is RQ's fast path and the only way to keep one
process per worker as every other system here does. Its concurrency is
therefore 1, not 10. ``result_ttl=0`` (RQ deletes the job when it succeeds)
unless the spec keeps results; bulk submission is ``Queue.enqueue_many`` in
one pipeline; delayed jobs need the worker started ``with_scheduler=True``,
which forks a scheduler process that moves due jobs once a second.
"""

from __future__ import annotations

import datetime
import math

from redis import Redis
from rq import Queue, SimpleWorker

from bench.protocol import ClientSpec, WorkerSpec
from bench.systems import _probe
from bench.systems._client import Client, Payload

PACKAGES = ("rq", "redis", "hiredis")

RESULT_TTL_KEPT = 500
"""RQ's default result TTL, used when results are wanted."""


def job(payload: Payload) -> bool:
    """The benchmark handler; RQ imports it as ``bench.systems.rq.job``."""
    return _probe.current().handle(payload)


def run_worker(spec: WorkerSpec, probe: _probe.Probe) -> None:
    """Run a SimpleWorker until SIGTERM (RQ's own handler stops it)."""
    connection = Redis.from_url(spec.url)
    worker = SimpleWorker([Queue(spec.queue, connection=connection)], connection=connection)
    probe.ready()
    worker.work(with_scheduler=spec.scheduler, logging_level="WARNING")


class RqClient(Client):
    bulk = True

    def __init__(self, spec: ClientSpec) -> None:
        self._queue = Queue(spec.queue, connection=Redis.from_url(spec.url))
        self._ttl = RESULT_TTL_KEPT if spec.results else 0

    async def submit(self, payload: Payload) -> None:
        self._queue.enqueue(job, payload, result_ttl=self._ttl)

    async def submit_many(self, payloads: list[Payload]) -> None:
        self._queue.enqueue_many(
            [Queue.prepare_data(job, args=(p,), result_ttl=self._ttl) for p in payloads]
        )

    async def submit_at(self, payload: Payload, due: float) -> None:
        when = datetime.datetime.fromtimestamp(due, tz=datetime.UTC)
        self._queue.enqueue_at(when, job, payload, result_ttl=self._ttl)

    async def submit_and_wait(self, payload: Payload, timeout: float) -> None:
        queued = self._queue.enqueue(job, payload, result_ttl=self._ttl)
        if queued.latest_result(timeout=math.ceil(timeout)) is None:
            raise TimeoutError(f"no result within {timeout} s")

    async def close(self) -> None:
        self._queue.connection.close()


def make_client(spec: ClientSpec) -> Client:
    """Return a client bound to the spec's Redis."""
    return RqClient(spec)

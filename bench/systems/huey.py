"""Huey adapter: ``RedisHuey`` with a consumer of 10 worker threads.

The consumer runs in this process (``huey.create_consumer(...).run()``), the
way ``huey_consumer -w 10 -k thread`` runs it. Results are stored only when
the spec asks for them (the round-trip scenario); delayed jobs go through
``task.schedule(delay=...)`` and the consumer's scheduler thread, which looks
for due jobs once a second by default. Huey pops with BRPOP and keeps no
record of jobs in flight, so a killed consumer loses what it was running.

The limited drain declares ``huey.rate_limit("bench", limit, 1)`` on the handler
(a fixed one-second window counted in Redis, so global across consumers): a
call over the limit raises ``RateLimitExceeded`` inside the task, and Huey
schedules it again for the start of the next window, which the scheduler
thread picks up on its next look.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from huey import RedisHuey

from bench.protocol import ClientSpec, WorkerSpec
from bench.systems import _probe
from bench.systems._client import Client, Payload

PACKAGES = ("huey", "redis", "hiredis")
RATE_LIMIT_NAME = "bench"


def _app(url: str, queue: str, results: bool, limit_rate: int = 0) -> tuple[RedisHuey, Any]:
    huey = RedisHuey(queue, url=url, results=results)
    limit = huey.rate_limit(RATE_LIMIT_NAME, limit_rate, 1) if limit_rate else None

    @huey.task(name="bench_job")
    def job(payload: Payload) -> bool:
        if limit is None:
            return _probe.current().handle(payload)
        with limit:  # raises RateLimitExceeded before the probe sees the job
            return _probe.current().handle(payload)

    return huey, job


def run_worker(spec: WorkerSpec, probe: _probe.Probe) -> None:
    """Run a thread consumer until SIGTERM (Huey's own handler stops it)."""
    huey, _ = _app(spec.url, spec.queue, spec.results, spec.limit_rate)
    consumer = huey.create_consumer(workers=spec.concurrency, worker_type="thread", periodic=False)
    probe.ready()
    consumer.run()


class HueyClient(Client):
    def __init__(self, spec: ClientSpec) -> None:
        self._huey, self._job = _app(spec.url, spec.queue, spec.results)
        self._submit: Callable[[Payload], Any] = self._job

    async def submit(self, payload: Payload) -> None:
        self._submit(payload)

    async def submit_at(self, payload: Payload, due: float) -> None:
        self._job.schedule(args=(payload,), delay=max(0.0, due - time.time()))

    async def submit_and_wait(self, payload: Payload, timeout: float) -> None:
        self._job(payload).get(blocking=True, timeout=timeout)


def make_client(spec: ClientSpec) -> Client:
    """Return a client bound to the spec's Redis."""
    return HueyClient(spec)

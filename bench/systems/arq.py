"""arq adapter: an ``arq.Worker`` with ``max_jobs=10`` (own venv: redis-py < 6).

The worker runs in this process (``Worker(...).run()``, what ``arq
WorkerSettings`` runs); the ready event is sent from ``on_startup``. arq polls
its queue (a sorted set) every ``poll_delay`` (0.5 s by default) when it finds
nothing to do, which is what its idle latency shows. Results are kept only
when the spec asks for them (``keep_result=0`` otherwise); ``job.result()``
polls every 0.5 s by default. Delayed jobs use ``_defer_until``. A job stays
in the queue while it runs, guarded by an in-progress key whose TTL is the job
timeout (300 s) plus 10 s, after which another worker may run it again.
"""

from __future__ import annotations

import datetime
from typing import Any

from arq import Worker, create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.worker import func

from bench.protocol import ClientSpec, WorkerSpec
from bench.systems import _probe
from bench.systems._client import Client, Payload

PACKAGES = ("arq", "redis", "hiredis")

JOB_NAME = "bench_job"
KEEP_RESULT_S = 3600
"""arq's default result retention, used when results are wanted."""


async def job(ctx: dict[str, Any], payload: Payload) -> bool:
    """The benchmark handler."""
    return await _probe.current().ahandle(payload)


def run_worker(spec: WorkerSpec, probe: _probe.Probe) -> None:
    """Run the worker until SIGTERM (arq's own handler stops it)."""

    async def on_startup(ctx: dict[str, Any]) -> None:
        probe.ready()

    worker = Worker(
        functions=[func(job, name=JOB_NAME)],
        redis_settings=RedisSettings.from_dsn(spec.url),
        queue_name=spec.queue,
        max_jobs=spec.concurrency,
        keep_result=KEEP_RESULT_S if spec.results else 0,
        on_startup=on_startup,
    )
    worker.run()


class ArqClient(Client):
    def __init__(self, spec: ClientSpec) -> None:
        self._settings = RedisSettings.from_dsn(spec.url)
        self._queue = spec.queue
        self._pool: ArqRedis | None = None

    async def _redis(self) -> ArqRedis:
        if self._pool is None:
            self._pool = await create_pool(self._settings, default_queue_name=self._queue)
        return self._pool

    async def submit(self, payload: Payload) -> None:
        await (await self._redis()).enqueue_job(JOB_NAME, payload)

    async def submit_at(self, payload: Payload, due: float) -> None:
        when = datetime.datetime.fromtimestamp(due, tz=datetime.UTC)
        await (await self._redis()).enqueue_job(JOB_NAME, payload, _defer_until=when)

    async def submit_and_wait(self, payload: Payload, timeout: float) -> None:
        queued = await (await self._redis()).enqueue_job(JOB_NAME, payload)
        if queued is None:
            raise RuntimeError("arq refused the job")
        await queued.result(timeout=timeout)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()


def make_client(spec: ClientSpec) -> Client:
    """Return a client bound to the spec's Redis."""
    return ArqClient(spec)

"""Taskiq adapter: ``taskiq_redis.ListQueueBroker`` and an in-process receiver.

The receiver runs in this process through ``taskiq.api.run_receiver_task``
with ``max_async_tasks=10`` (what ``taskiq worker --workers 1`` runs in each
worker process). ListQueueBroker pushes with LPUSH and pops with BRPOP: no
acknowledgement, so a killed worker's jobs are gone. A
``RedisAsyncResultBackend`` is attached only when the spec asks for results
(``wait_result`` then polls every 0.2 s, its default). Taskiq has no delayed
send on this broker: a job for later is a schedule in
``ListRedisScheduleSource``, sent by a ``TaskiqScheduler`` — run here as a
task next to the receiver when the spec asks for a scheduler, with its
defaults (schedules re-read every 60 s, due ones sent every second).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import signal
from typing import Any

from taskiq import TaskiqScheduler
from taskiq.api import run_receiver_task, run_scheduler_task
from taskiq_redis import ListQueueBroker, ListRedisScheduleSource, RedisAsyncResultBackend

from bench.protocol import ClientSpec, WorkerSpec
from bench.systems import _probe
from bench.systems._client import Client, Payload

PACKAGES = ("taskiq", "taskiq-redis", "redis", "hiredis")

SCHEDULE_PREFIX = "bench-schedule"
"""No colon: ListRedisScheduleSource parses its time keys by splitting on the
first two colons."""


def _broker(url: str, queue: str, results: bool) -> tuple[Any, Any]:
    broker: Any = ListQueueBroker(url, queue_name=queue)
    if results:
        broker = broker.with_result_backend(RedisAsyncResultBackend(url))

    @broker.task(task_name="bench_job")
    async def job(payload: dict[str, Any]) -> bool:
        return await _probe.current().ahandle(payload)

    return broker, job


async def _serve(spec: WorkerSpec, probe: _probe.Probe) -> None:
    broker, _ = _broker(spec.url, spec.queue, spec.results)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await broker.startup()
    tasks = [asyncio.create_task(run_receiver_task(broker, max_async_tasks=spec.concurrency))]
    if spec.scheduler:
        source = ListRedisScheduleSource(spec.url, prefix=SCHEDULE_PREFIX)
        scheduler = TaskiqScheduler(broker, sources=[source])
        tasks.append(asyncio.create_task(run_scheduler_task(scheduler)))
    probe.ready()
    await stop.wait()
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await broker.shutdown()


def run_worker(spec: WorkerSpec, probe: _probe.Probe) -> None:
    """Run the receiver (and the scheduler, if asked) until SIGTERM."""
    asyncio.run(_serve(spec, probe))


class TaskiqClient(Client):
    def __init__(self, spec: ClientSpec) -> None:
        self._broker, self._job = _broker(spec.url, spec.queue, spec.results)
        self._url = spec.url
        self._source: ListRedisScheduleSource | None = None
        self._started = False

    async def _ensure_started(self) -> None:
        if not self._started:
            await self._broker.startup()
            self._started = True

    async def submit(self, payload: Payload) -> None:
        await self._ensure_started()
        await self._job.kiq(payload)

    async def submit_at(self, payload: Payload, due: float) -> None:
        await self._ensure_started()
        if self._source is None:
            self._source = ListRedisScheduleSource(self._url, prefix=SCHEDULE_PREFIX)
            await self._source.startup()
        when = datetime.datetime.fromtimestamp(due, tz=datetime.UTC)
        await self._job.kicker().schedule_by_time(self._source, when, payload)

    async def submit_and_wait(self, payload: Payload, timeout: float) -> None:
        await self._ensure_started()
        task = await self._job.kiq(payload)
        await task.wait_result(timeout=timeout)

    async def close(self) -> None:
        if self._source is not None:
            await self._source.shutdown()
        if self._started:
            await self._broker.shutdown()


def make_client(spec: ClientSpec) -> Client:
    """Return a client bound to the spec's Redis."""
    return TaskiqClient(spec)

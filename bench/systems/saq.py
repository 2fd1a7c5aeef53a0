"""SAQ adapter: a ``saq.Worker`` with ``concurrency=10`` on a Redis queue.

The worker runs in this process's event loop (``await worker.start()``), as
``saq`` would run it; the ready event is sent from its startup hook. A job's
record is deleted when it finishes (``ttl=-1``) unless the spec keeps results,
in which case SAQ's default ``ttl`` (600 s) applies and ``queue.apply`` waits
for the result through Redis pub/sub. Delayed jobs use ``scheduled=`` in whole
epoch seconds (rounded up here, so never early by construction); the worker's
``schedule`` timer moves due jobs once a second. A job held by a killed worker
stays "active" until the 60 s sweep aborts it; it is not re-run by default.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from saq import Queue, Worker

from bench.protocol import ClientSpec, WorkerSpec
from bench.systems import _probe
from bench.systems._client import Client, Payload

PACKAGES = ("saq", "redis", "hiredis")

JOB_NAME = "bench_job"
DELETE_WHEN_DONE = -1
"""SAQ ``ttl`` value that deletes a job's record once it finishes."""


async def job(ctx: dict[str, Any], *, payload: Payload) -> bool:
    """The benchmark handler."""
    return await _probe.current().ahandle(payload)


def run_worker(spec: WorkerSpec, probe: _probe.Probe) -> None:
    """Run the worker until SIGTERM (SAQ's own handler stops it)."""

    async def startup(ctx: dict[str, Any]) -> None:
        probe.ready()

    async def main() -> None:
        queue = Queue.from_url(spec.url, name=spec.queue)
        worker = Worker(
            queue, functions=[(JOB_NAME, job)], concurrency=spec.concurrency, startup=startup
        )
        try:
            await worker.start()
        finally:
            await queue.disconnect()

    asyncio.run(main())


class SaqClient(Client):
    def __init__(self, spec: ClientSpec) -> None:
        self._queue = Queue.from_url(spec.url, name=spec.queue)
        self._extra: dict[str, Any] = {} if spec.results else {"ttl": DELETE_WHEN_DONE}

    async def submit(self, payload: Payload) -> None:
        await self._queue.enqueue(JOB_NAME, payload=payload, **self._extra)

    async def submit_at(self, payload: Payload, due: float) -> None:
        await self._queue.enqueue(
            JOB_NAME, payload=payload, scheduled=math.ceil(due), **self._extra
        )

    async def submit_and_wait(self, payload: Payload, timeout: float) -> None:
        await self._queue.apply(JOB_NAME, timeout=timeout, payload=payload)

    async def close(self) -> None:
        await self._queue.disconnect()


def make_client(spec: ClientSpec) -> Client:
    """Return a client bound to the spec's Redis."""
    return SaqClient(spec)

"""The progress sender: ``job.set_progress`` from handlers, to Redis, in the background.

A handler calls ``job.set_progress(percent, info)`` from the event loop (async) or from
a thread of the pool (sync); either way the call only records the latest value and wakes
this sender, which writes it with ``set_progress.lua`` (checked against the lease, so a
job reaped meanwhile can't report) and wakes the job's watchers. Several calls between
two writes collapse into the last one, so a handler reporting in a tight loop costs one
round trip per write, not per call. Jobs that never report cost nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from bananas.broker import Broker
from bananas.errors import BananasError
from bananas.worker_runtime.retry import RedisCaller

logger = logging.getLogger(__name__)

#: (routing key, job id, attempt) -> the latest (percent, info) not yet written.
Pending = dict[tuple[str, str, int], tuple[float, Any]]


class ProgressSender:
    """Writes reported progress to Redis, the latest value per job (see the module docstring)."""

    def __init__(self, broker: Broker, redis: RedisCaller) -> None:
        self.broker = broker
        self.redis = redis
        self._pending: Pending = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self, spawn: Callable[..., asyncio.Task[None]]) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = spawn(self._run(), name="bananas-progress")

    def sink(self, routing_key: str, job_id: str, attempt: int) -> Callable[[float, Any], None]:
        """The callback a job's ``set_progress`` calls (safe from any thread)."""
        return partial(self._report, (routing_key, job_id, attempt))

    def _report(self, key: tuple[str, str, int], percent: float, info: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._put(key, percent, info)
        else:  # a sync handler in the thread pool
            loop.call_soon_threadsafe(self._put, key, percent, info)

    def _put(self, key: tuple[str, str, int], percent: float, info: Any) -> None:
        self._pending[key] = (percent, info)
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending, {}
                for (rk, job_id, attempt), (percent, info) in batch.items():
                    try:
                        await self.redis.call(
                            partial(self.broker.set_progress, rk, job_id, attempt, percent, info)
                        )
                    except (BananasError, TypeError) as exc:
                        logger.warning("progress of job %s not recorded: %s", job_id, exc)

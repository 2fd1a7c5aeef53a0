"""The slots: ``concurrency`` tasks that run leased jobs through the executor.

The fetcher hands each leased job to :meth:`Slots.offer`; a free slot takes it
from a local deque (an idle slot waits on a future of its own, and each offered job
wakes one: cheaper per job than an ``asyncio.Queue``), runs it through the
:class:`~bananas.worker_runtime.executor.Executor`, tells the lease keeper it
finished and gives the outcome to the acker. Jobs still queued when the worker
stops never started: :meth:`Slots.take_unstarted` hands them back at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from bananas.broker import Leased
from bananas.worker_runtime.acker import Acker
from bananas.worker_runtime.executor import Executor
from bananas.worker_runtime.leases import Held, Leases
from bananas.worker_runtime.metrics import Metrics

logger = logging.getLogger(__name__)


class Slots:
    """Runs up to ``concurrency`` jobs at once (see the module docstring)."""

    def __init__(
        self,
        executor: Executor,
        leases: Leases,
        acker: Acker,
        metrics: Metrics,
        *,
        concurrency: int,
    ) -> None:
        self.executor = executor
        self.leases = leases
        self.acker = acker
        self.metrics = metrics
        self.concurrency = concurrency
        self._ready: deque[Held] = deque()
        #: Idle slots, each waiting on its own future.
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._tasks: list[asyncio.Task[None]] = []
        #: Slots running a job now (``bananas_worker_busy_slots``).
        self.busy = 0

    def start(self, spawn: Callable[..., asyncio.Task[None]]) -> None:
        self._tasks = [
            spawn(self._run(), name=f"bananas-slot-{i}") for i in range(self.concurrency)
        ]

    def offer(self, routing_key: str, leased: Leased) -> None:
        """Queue a leased job for the next free slot."""
        self._ready.append((routing_key, leased))
        waiting = self._waiting
        while waiting:
            waiter = waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def take_unstarted(self) -> list[Held]:
        """Empty the queue: the jobs no slot has started."""
        unstarted = list(self._ready)
        self._ready.clear()
        return unstarted

    async def stop(self) -> None:
        """Cancel every slot (after the drain: what still runs is cut off)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self) -> None:
        ready, waiting, executor, leases, acker, metrics = (
            self._ready,
            self._waiting,
            self.executor,
            self.leases,
            self.acker,
            self.metrics,
        )
        debug = logger.isEnabledFor(logging.DEBUG)
        loop = asyncio.get_running_loop()
        while True:
            if not ready:
                # Woken by an offer; another slot may have taken that job first: look again.
                waiter = loop.create_future()
                waiting.append(waiter)
                try:
                    await waiter
                except asyncio.CancelledError:
                    if waiter in waiting:
                        waiting.remove(waiter)
                    raise
                continue
            rk, leased = ready.popleft()
            self.busy += 1
            try:
                finished = await executor.run(rk, leased)
            except Exception as exc:  # a bug of the runtime: fail the attempt, keep serving
                logger.exception("internal error running job %s on %s", leased.id, rk)
                finished = executor.internal_error(rk, leased, exc)
            finally:
                self.busy -= 1
            if debug:
                logger.debug(
                    "job %s (%s) %s in %.3fs",
                    leased.id,
                    finished.name,
                    finished.status,
                    finished.duration,
                    extra={"job_id": leased.id, "routing_key": rk, "job_name": finished.name},
                )
            acker.put(finished)
            metrics.job_finished(
                finished.name,
                finished.status,
                rk,
                finished.duration,
                finished.priority.value,
                finished.waited,
            )
            leases.finished(leased)

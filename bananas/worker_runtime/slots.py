"""The slots: ``concurrency`` tasks that run leased jobs through the executor.

The fetcher hands each leased job to :meth:`Slots.offer`; a free slot takes it
from a local deque, runs it through the
:class:`~bananas.worker_runtime.executor.Executor`, tells the lease keeper it
finished and gives the outcome to the acker. Jobs still queued when the worker
stops never started: :meth:`Slots.take_unstarted` hands them back at once.

One slot runs a fetched batch while its jobs do not wait. A slot starts a job's
coroutine itself (``send``); a job that finishes without suspending (a no-op, or any
async handler that never awaits something pending) costs no loop wake-up of its own,
and the slot takes the next ready job in the same turn of the loop. Only when a job
suspends does the slot wake another idle one for the jobs still ready (and the
suspended job's slot goes on driving it: its task is the job's task, which the
deadline watchdog cancels). So an offer wakes an idle slot only when no slot is
running (:attr:`Slots._active`), a batch of ten no-op jobs costs one wake-up instead
of ten, and every job still starts as soon as a slot is free: at most
``concurrency`` jobs run at once, and none waits behind one that is waiting.
"""

from __future__ import annotations

import asyncio
import logging
import types
from collections import deque
from collections.abc import Callable, Coroutine, Generator
from typing import Any

from bananas.broker import Leased
from bananas.worker_runtime.acker import Acker
from bananas.worker_runtime.executor import Executor, Finished
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
        #: Slots that will look at the ready deque before they next sleep: running (not
        #: suspended inside a job), or woken and not yet run. An offer wakes a slot only
        #: when this is 0. Every slot counts until it first goes to sleep.
        self._active = concurrency
        #: Slots running a job now (``bananas_worker_busy_slots``).
        self.busy = 0

    def start(self, spawn: Callable[..., asyncio.Task[None]]) -> None:
        self._tasks = [
            spawn(self._run(), name=f"bananas-slot-{i}") for i in range(self.concurrency)
        ]

    def offer(self, routing_key: str, leased: Leased) -> None:
        """Queue a leased job for the next free slot."""
        self._ready.append((routing_key, leased))
        if self._active <= 0:
            self._wake_one()

    def _wake_one(self) -> None:
        """Wake an idle slot (none idle: a running one takes the job when it is free)."""
        waiting = self._waiting
        while waiting:
            waiter = waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._active += 1
                return

    def _suspended(self) -> None:
        """The calling slot's job is waiting: the jobs still ready go to another slot."""
        self._active -= 1
        if self._ready and self._active <= 0:
            self._wake_one()

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
                self._active -= 1
                try:
                    await waiter
                except asyncio.CancelledError:
                    if waiter in waiting:
                        waiting.remove(waiter)
                    else:  # woken, then stopped: pass the wake on
                        self._suspended()
                    raise
                continue
            rk, leased = ready.popleft()
            self.busy += 1
            try:
                run = executor.run(rk, leased)
                try:
                    waits_on = run.send(None)
                except StopIteration as done:  # finished without waiting: no wake-up
                    finished = done.value
                else:
                    self._suspended()
                    try:
                        finished = await _drive(run, waits_on)
                    finally:
                        self._active += 1
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


@types.coroutine
def _drive(run: Coroutine[Any, Any, Finished], waits_on: Any) -> Generator[Any, Any, Finished]:
    """Await the rest of ``run``, a coroutine the slot started itself that suspended on
    ``waits_on``: what it waits on goes up to the slot's task, and what the task sends or
    throws in (a cancellation by the deadline watchdog) goes down to it, as ``await``
    would have done from the start."""
    while True:
        try:
            sent = yield waits_on
        except GeneratorExit:
            run.close()
            raise
        except BaseException as exc:
            try:
                waits_on = run.throw(exc)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
        else:
            try:
                waits_on = run.send(sent)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

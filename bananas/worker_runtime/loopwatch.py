"""The blocked-loop watchdog: a *thread* that notices the worker's event loop has
stopped turning, says which job's handler is blocking it, and keeps the worker's
leases alive meanwhile.

An ``async def`` handler that calls blocking code (``time.sleep``, a sync HTTP
client, a CPU-bound loop) stops every task of the worker: renewals, acks, the
job-timeout watchdog, ``/healthz``. A check running *on* the loop cannot see that,
so this one runs beside it:

- a task on the loop stamps a heartbeat every :data:`TICK` seconds;
- the thread looks every :data:`TICK` seconds; when the stamp is older than the
  threshold the loop is blocked. The thread reads the loop thread's Python stack
  (``sys._current_frames``) and names the async handler whose coroutine frame is on
  it, logs one warning per blocked stretch, and sets the
  ``bananas_event_loop_blocked_seconds`` gauge (0 while the loop runs) and the
  ``bananas_event_loop_blocks_total`` counter;
- while the loop stays blocked, the thread renews every lease the worker holds,
  every third of a lease, on a connection of its own (``renew`` is fenced by the
  lease tokens and idempotent, so racing the loop's own renewal at the edges is
  harmless). Neither the blocking job nor the jobs waiting behind it is reaped and
  run again elsewhere.

When the loop turns again, the stretch's length is logged. A handler that blocked
past its own timeout is failed as timed out by the executor (it checks the time
the handler took when it returns), never recorded as completed.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import FrameType
from typing import Any

logger = logging.getLogger(__name__)

#: How often the loop stamps its heartbeat and the thread looks at it (seconds).
TICK = 0.1
#: A loop that has not turned for this long is reported as blocked (seconds), unless a
#: quarter of the lease is shorter.
BLOCKED_AFTER = 1.0


def threshold(lease_seconds: float) -> float:
    """Seconds without a turn after which the loop counts as blocked."""
    return max(2 * TICK, min(BLOCKED_AFTER, lease_seconds / 4))


@dataclass(frozen=True)
class Running:
    """An async handler running on the loop: its job and its coroutine's frame."""

    job_id: str
    name: str
    frame: FrameType | None


def blocker(stack: FrameType | None, running: Iterable[Running]) -> Running | None:
    """The running handler whose coroutine frame is on ``stack`` (the loop thread's)."""
    frames: set[int] = set()
    frame = stack
    while frame is not None:
        frames.add(id(frame))
        frame = frame.f_back
    for entry in running:
        if entry.frame is not None and id(entry.frame) in frames:
            return entry
    return None


class LoopWatch:
    """Watches one event loop from a daemon thread (see the module docstring).

    ``running()`` lists the async handlers running now (the executor's); ``renew()``
    renews every held lease synchronously (called from the thread only); ``blocked``
    and ``blocks`` are the metrics to set (a gauge and a counter), or None.
    """

    def __init__(
        self,
        *,
        lease_seconds: float,
        running: Callable[[], Iterable[Running]],
        renew: Callable[[], None],
        blocked_gauge: Any = None,
        blocks_counter: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.after = threshold(lease_seconds)
        self.renew_every = lease_seconds / 3
        self.running = running
        self.renew = renew
        self.blocked_gauge = blocked_gauge
        self.blocks_counter = blocks_counter
        self.clock = clock
        self._beat = clock()
        self._loop_thread: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Blocked stretches seen so far (for tests and the log).
        self.blocks = 0

    async def heartbeat(self) -> None:
        """The loop side: stamp every TICK until cancelled; starts the thread first."""
        self._loop_thread = threading.get_ident()
        self._beat = self.clock()
        self._thread = threading.Thread(target=self._watch, name="bananas-loopwatch", daemon=True)
        self._thread.start()
        try:
            while True:
                self._beat = self.clock()
                await asyncio.sleep(TICK)
        finally:
            self._stop.set()

    def stop(self) -> None:
        self._stop.set()

    # -- the thread ---------------------------------------------------------------------------

    def _watch(self) -> None:
        blocked_since: float | None = None
        renewed = 0.0
        while not self._stop.wait(TICK):
            now = self.clock()
            stalled = now - self._beat
            if stalled < self.after:
                if blocked_since is not None:
                    logger.warning(
                        "event loop ran again after blocking for %.1fs",
                        stalled_for(now, blocked_since, self.after),
                    )
                    blocked_since = None
                    self._gauge(0.0)
                continue
            if blocked_since is None:
                blocked_since, renewed = now, 0.0
                self._report(stalled)
            self._gauge(stalled)
            if now - renewed >= self.renew_every:
                renewed = now
                self._renew()

    def _report(self, stalled: float) -> None:
        self.blocks += 1
        if self.blocks_counter is not None:
            self.blocks_counter.inc()
        stack = sys._current_frames().get(self._loop_thread or -1)
        culprit = blocker(stack, list(self.running()))
        if culprit is None:
            where = _describe_stack(stack)
            logger.warning(
                "event loop blocked for %.1fs (not by a job's handler: %s); keeping the "
                "leases alive from the watchdog thread",
                stalled,
                where,
            )
            return
        logger.warning(
            "event loop blocked for %.1fs by the handler of job %s (%s): an async def "
            "handler is calling blocking code; keeping the leases alive from the watchdog "
            "thread (make it a plain def to run it in the thread pool)",
            stalled,
            culprit.job_id,
            culprit.name,
            extra={"job_id": culprit.job_id, "job_name": culprit.name},
        )

    def _renew(self) -> None:
        try:
            self.renew()
        except Exception:  # the thread must outlive any Redis trouble
            logger.exception("the watchdog thread could not renew the leases")

    def _gauge(self, seconds: float) -> None:
        if self.blocked_gauge is not None:
            self.blocked_gauge.set(seconds)


def stalled_for(now: float, since: float, after: float) -> float:
    """Length of a blocked stretch noticed at ``since`` (``after`` s into it) ending now."""
    return now - since + after


def _describe_stack(stack: FrameType | None) -> str:
    if stack is None:
        return "no stack"
    code = stack.f_code
    return f"{code.co_filename}:{stack.f_lineno} in {code.co_name}"

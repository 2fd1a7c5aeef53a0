"""The acker: sends finished jobs to Redis in batches.

Slots hand every finished job to :meth:`Acker.put`. The acker sends what has
gathered in one script call per routing key (``ack`` for successes, ``fail`` for
failed attempts); while one batch is in flight the next one gathers. A job that is
a step of a workflow (``Finished.workflow``, one field check for the others) is first
recorded on its workflow, which queues the steps it releases, and only then acked or
dead-lettered (``docs/architecture.md``, "Workflows"). On shutdown
:meth:`Acker.close` lets it send everything still pending, jobs that finished
during the drain included, and never cuts an ack in flight short, but it does not
wait for ever on a Redis that is gone: those leases expire and are reaped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from functools import partial

from bananas.broker import Broker, FailCode
from bananas.errors import BananasConnectionError, BananasError
from bananas.ops import Op
from bananas.records import split_error, with_history
from bananas.timings import tally
from bananas.transport import FastLane
from bananas.worker_runtime.executor import Finished
from bananas.worker_runtime.metrics import Metrics
from bananas.worker_runtime.retry import RedisCaller
from bananas.workflow_store import WorkflowStore

logger = logging.getLogger(__name__)

#: Longest a stopping worker waits for its last acks to reach Redis.
ACK_FLUSH_TIMEOUT = 10.0


class Acker:
    """Batches acks and fails (see the module docstring); counts what it recorded."""

    def __init__(
        self,
        broker: Broker,
        redis: RedisCaller,
        metrics: Metrics,
        workflows: WorkflowStore | None = None,
    ) -> None:
        self.broker = broker
        self.workflows = workflows or WorkflowStore(broker, clock=broker.clock)
        self.redis = redis
        self.metrics = metrics
        #: Jobs acknowledged / dead-lettered by this worker.
        self.processed = 0
        self.failed = 0
        self._pending: list[Finished] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._lane: FastLane | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self, spawn: Callable[..., asyncio.Task[None]], lane: FastLane | None) -> None:
        """Start sending on ``lane`` (a dedicated connection, or None for the pool)."""
        self._lane = lane
        self._task = spawn(self._run(), name="bananas-acker")

    def put(self, finished: Finished) -> None:
        """Queue one finished job for the next batch."""
        self._pending.append(finished)
        self._wake.set()

    async def close(self) -> None:
        """Send what is pending (within :data:`ACK_FLUSH_TIMEOUT`), then stop."""
        self._closing = True
        self._wake.set()
        task = self._task
        if task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), ACK_FLUSH_TIMEOUT)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._pending
                self._pending = []
                self.metrics.flush()  # the per-job metrics, once per batch
                await self.redis.call(partial(self._send, batch), self._lane)
            if self._closing:
                return

    def _send(self, batch: list[Finished]) -> Op[None]:
        acks: dict[str, list[Finished]] = defaultdict(list)
        fails: dict[str, list[Finished]] = defaultdict(list)
        steps = [f for f in batch if f.workflow is not None]
        held: set[int] = set()
        if steps:
            held = yield from self._advance(steps)
        for f in batch:
            if not held or id(f) not in held:
                (fails if f.failed else acks)[f.routing_key].append(f)
        for rk, group in acks.items():
            yield from self.broker.ack(rk, [f.outcome for f in group], _timings(group))
            self.processed += len(group)
        for rk, group in fails.items():
            # Each attempt's error is kept: this one's in front of those stored before.
            stored = yield from self.broker.stored_errors(rk, [f.outcome.id for f in group])
            outcomes = [
                replace(f.outcome, error=with_history(f.outcome.error, before))
                for f, before in zip(group, stored, strict=True)
            ]
            reply = yield from self.broker.fail_batch(rk, outcomes, _timings(group))
            for f, code in zip(group, reply.codes, strict=True):
                self._failed(f, FailCode(code))
            if reply.trimmed:
                self.metrics.dead_trimmed.labels(rk).inc(reply.trimmed)
                logger.info(
                    "retention of %s deleted %d old dead-lettered job(s), oldest first",
                    rk,
                    reply.trimmed,
                    extra={"routing_key": rk},
                )

    def _advance(self, steps: list[Finished]) -> Op[set[int]]:
        """Record workflow steps BEFORE their ack or dead-lettering, and queue the steps
        they release: a crash in between re-delivers the job and the replay is harmless
        (``workflow_advance.lua``).

        Returns the steps (``id()`` of their :class:`Finished`) whose workflow refused
        the call (say, Redis at ``maxmemory`` refusing the next steps' enqueue): those are
        neither acked nor failed, so their lease expires and they run again later, while
        the rest of the batch is acked. A lost connection fails the whole batch (and
        :class:`RedisCaller` sends it again).
        """
        held: set[int] = set()
        for f in steps:
            step = f.workflow
            assert step is not None
            try:
                yield from self.workflows.advance(
                    step.workflow_id,
                    step.node,
                    done=not f.failed,
                    value=step.value,
                    trace=step.trace,
                )
            except BananasConnectionError:
                raise
            except BananasError as exc:
                held.add(id(f))
                logger.error(
                    "workflow %s refused step %s (%s); the job runs again after its lease: %s",
                    step.workflow_id,
                    f.outcome.id,
                    f.name,
                    exc,
                    extra={"job_id": f.outcome.id, "job_name": f.name},
                )
        return held

    def _failed(self, f: Finished, code: FailCode) -> None:
        rk = f.routing_key
        context = {
            "job_id": f.outcome.id,
            "job_name": f.name,
            "routing_key": rk,
            "attempt": f.outcome.attempt,
            "duration_s": round(f.duration, 6),
            "error": split_error(f.outcome.error)[0],
        }
        if code is FailCode.DEAD:
            self.metrics.dead.labels(f.name, rk).inc()
            self.failed += 1
            logger.warning(
                "job %s (%s) dead-lettered: %s",
                f.outcome.id,
                f.name,
                f.outcome.error,
                extra=context,
            )
        elif code is FailCode.RETRIED:
            self.metrics.retried.labels(f.name, rk).inc()
            logger.debug(
                "job %s (%s) failed attempt %d, retrying: %s",
                f.outcome.id,
                f.name,
                f.outcome.attempt,
                f.outcome.error,
                extra=context,
            )


def _timings(group: list[Finished]) -> str:
    """The run times and first-attempt queue waits of a batch (``bananas.timings``)."""
    return tally((f.duration, f.waited) for f in group)

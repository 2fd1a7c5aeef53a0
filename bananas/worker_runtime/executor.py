"""Runs one leased job and decides how it ended (seed: ``Executor``).

The executor never touches Redis: it turns a leased record into a :class:`Finished`
(complete, retry at a time, or dead-letter now) that the worker acknowledges in
batches. Every way a job can go wrong ends in one of those three, so the worker
survives anything a handler or a record does:

- a record that does not parse, has a newer schema version, or holds a TTL, timeout
  or retry budget Redis cannot store (``success_ttl: 1e999``): dead-letter, with why;
- an async handler that returns only after blocking the loop past its deadline: a
  timed-out attempt (never "completed");
- a bug of the runtime itself while running a job (:meth:`Executor.internal_error`):
  a failed attempt naming the error, so the job is never left leased;
- no handler for the name (or not one this worker runs): a failed attempt with
  ``no handler for <name>``, retried with backoff, so it is not lost during a rolling
  deploy and ends in the dead-letter queue after ``max_retries``;
- the handler raises (anything, ``SystemExit`` and ``MemoryError`` included): retry with
  backoff until ``max_retries``, then dead-letter; ``PermanentError``: dead-letter now;
  ``Retry(delay=...)``: retry after that delay;
- the deadline passes: an async handler is cancelled, a sync one is abandoned (its
  thread runs on, its late result is discarded) and the attempt fails;
- the result is not JSON, or too large: dead-letter (a retry would not change it).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import traceback
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic_core import TzInfo

from bananas import tracing
from bananas.broker import Leased, Outcome
from bananas.errors import InvalidJobError, PermanentError, Retry
from bananas.models import (
    DEFAULT_BACKOFF_CAP,
    DEFAULT_FAILURE_TTL,
    DEFAULT_MAX_RESULT_BYTES,
    MAX_DURATION_SECONDS,
    TRACEBACK_HEAD,
    TRACEBACK_MAX,
    Job,
    JobStatus,
    Priority,
)
from bananas.records import (
    MAX_KEPT_RECORD_BYTES,
    SCHEMA_VERSION,
    decode_job,
    encode,
    kept_record,
    result_record,
    split_error,
)
from bananas.validation import validate_count, validate_duration, validate_optional_duration
from bananas.worker_runtime.logs import JobContext, current_job
from bananas.worker_runtime.loopwatch import Running
from bananas.worker_runtime.registry import HandlerEntry, Registry
from bananas.worker_runtime.retry import backoff_delay

#: The per-job lines (see ``bananas.worker_runtime.logs``): off unless LOG_JOBS is on.
jobs_log = logging.getLogger("bananas.jobs")
#: How often the watchdog looks for handlers past their deadline (seconds).
WATCHDOG_TICK = 0.05
#: The tzinfo pydantic gives a record's UTC timestamps (one shared object), and the
#: epoch in it: the difference of two datetimes of the same tzinfo needs no call of its
#: ``utcoffset`` (a call into pydantic-core that made ``timestamp()`` cost a
#: microsecond). Exact for a fixed offset; any other tzinfo goes through ``timestamp()``.
_RECORD_UTC = TzInfo(0)
_RECORD_EPOCH = datetime(1970, 1, 1, tzinfo=_RECORD_UTC)


@dataclass(slots=True)
class WorkflowStep:
    """The workflow a finished job is a step of, and what to record for it: the result
    JSON of a success, the error of a job that is dead-lettered (see ``acker``)."""

    workflow_id: str
    node: int
    value: str
    #: The trace context of the step's consumer span when tracing is on (the parent of
    #: the producer spans of the steps it releases, ``bananas.tracing``); else {}.
    trace: dict[str, str]


@dataclass(slots=True)
class Finished:
    """How one job ended: ``failed`` False is an ack; True goes to ``Broker.fail``."""

    routing_key: str
    outcome: Outcome
    failed: bool
    name: str
    status: str
    duration: float
    priority: Priority
    #: Set for a step of a workflow that completed or is dead-lettered; None otherwise.
    workflow: WorkflowStep | None = None
    #: Seconds the job waited between being ready and this, its first attempt, starting
    #: (``bananas_job_queue_wait_seconds``); None for a later attempt, whose ready time
    #: the record does not hold.
    waited: float | None = None


def _step(job: Job, value: str) -> WorkflowStep | None:
    if job.workflow_id is None or job.node is None:
        return None
    return WorkflowStep(job.workflow_id, job.node, value, tracing.current_context())


class Executor:
    """Runs handlers from a registry with timeouts, and classifies the outcome."""

    def __init__(
        self,
        registry: Registry,
        *,
        job_timeout: float,
        threads: ThreadPoolExecutor,
        clock: Callable[[], float] = time.time,
        max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
        backoff_cap: float = DEFAULT_BACKOFF_CAP,
        job_types: Collection[str] = (),
        worker_id: str = "",
    ) -> None:
        self.registry = registry
        self.job_timeout = job_timeout
        self.threads = threads
        self.clock = clock
        self.max_result_bytes = max_result_bytes
        self.backoff_cap = backoff_cap
        self.job_types = frozenset(job_types)
        self.worker_id = worker_id
        #: Makes the ``set_progress`` callback of a job (the worker's ProgressSender.sink).
        self.progress: Callable[[str, str, int], Callable[[float, Any], None]] | None = None
        #: Running handlers and their deadline (perf_counter); see :meth:`watchdog`.
        self._deadlines: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        #: Async handlers running on the loop, for the blocked-loop watchdog thread: job
        #: id, name and coroutine (a :class:`Running` is built only when it asks).
        self._running: dict[asyncio.Task[Any], tuple[str, str, Any]] = {}
        #: The (TTLs, timeout, retries) of the last record that passed
        #: :func:`record_problem` (a tuple of floats and ints: NaN never compares equal).
        self._good_limits: tuple[Any, ...] = ()

    def running_async(self) -> list[Running]:
        """The async handlers running now (read by the watchdog thread: a copy)."""
        return [
            Running(job_id, name, getattr(coro, "cr_frame", None))
            for job_id, name, coro in list(self._running.values())
        ]

    async def watchdog(self, tick: float = WATCHDOG_TICK) -> None:
        """Cancel handlers past their deadline; runs for the worker's life.

        One loop for all jobs instead of a timer per job: a per-job ``asyncio.timeout``
        cost more than the rest of the job's bookkeeping together. A deadline is
        therefore enforced within ``tick`` seconds.
        """
        while True:
            await asyncio.sleep(tick)
            now = time.perf_counter()
            for task, deadline in list(self._deadlines.items()):
                if deadline <= now and task not in self._expired:
                    self._expired.add(task)
                    task.cancel()

    async def run(self, routing_key: str, leased: Leased) -> Finished:
        """Run ``leased`` to an outcome; never raises except ``CancelledError``.

        A record too big to copy next to its result (``records.MAX_KEPT_RECORD_BYTES``)
        is kept there as a stand-in without its payload."""
        try:
            # The id the job was leased under wins over the record's own "id" field: a
            # record written by hand (or by another producer) must never make this worker
            # ack, fail or report under the id of some other job.
            job = decode_job(
                leased.record,
                attempts=leased.attempt,
                status=JobStatus.PROCESSING,
                job_id=leased.id,
            )
        except ValueError as exc:
            return self._unreadable(routing_key, leased, f"unreadable job record: {exc}")
        problem = self._record_problem(job)
        if problem is not None:
            return self._unreadable(routing_key, leased, f"bad job record: {problem}")
        if job.v > SCHEMA_VERSION:
            return self._unreadable(
                routing_key,
                leased,
                f"job record schema version {job.v} is "
                f"newer than this worker understands ({SCHEMA_VERSION})",
            )
        waited = self._waited(job)
        token = current_job.set(
            JobContext(job.id, job.name, routing_key, job.attempts, self.worker_id)
        )
        try:
            tracer = tracing.tracer()
            if tracer is None:
                finished = await self._attempt(routing_key, job)
            else:
                finished = await self._traced(tracer, routing_key, job)
        finally:
            current_job.reset(token)
        finished.waited = waited
        if len(leased.record) > MAX_KEPT_RECORD_BYTES:
            finished.outcome.kept_record = kept_record(leased.record)
        return finished

    def _record_problem(self, job: Job) -> str | None:
        """:func:`record_problem`, skipped for the limits of the last good record (a
        worker's jobs mostly carry the same few)."""
        limits = (job.success_ttl, job.failure_ttl, job.timeout, job.max_retries)
        if limits == self._good_limits:
            return None
        problem = record_problem(job)
        if problem is None:
            self._good_limits = limits
        return problem

    async def _traced(self, tracer: Any, routing_key: str, job: Job) -> Finished:
        """:meth:`_attempt` inside its consumer span (``bananas.tracing``)."""
        with tracing.consume(tracer, job.meta, routing_key, job.id, job.name, job.attempts) as span:
            finished = await self._attempt(routing_key, job)
            if finished.failed:
                tracing.failed(span, finished.status, split_error(finished.outcome.error)[0])
            return finished

    def _waited(self, job: Job) -> float | None:
        """Seconds since ``job`` was ready, for its first attempt (None for later ones).
        Measured on this host's clock against the submitter's: a skew shows up here
        (never below 0)."""
        if job.attempts != 1:
            return None
        ready = job.scheduled_for or job.created_at
        if ready.tzinfo is _RECORD_UTC:  # (the same tzinfo: no utcoffset call, see below)
            return max(0.0, self.clock() - (ready - _RECORD_EPOCH).total_seconds())
        return max(0.0, self.clock() - ready.timestamp())

    async def _attempt(self, routing_key: str, job: Job) -> Finished:
        """Run ``job``'s handler to an outcome."""
        entry = self.registry.get(job.name)
        if entry is None or (self.job_types and job.name not in self.job_types):
            return self._failure(routing_key, job, f"no handler for {job.name}", 0.0)
        timeout = self._limits(job, entry)
        started = time.perf_counter()
        task = asyncio.current_task()
        assert task is not None
        self._deadlines[task] = started + timeout
        try:
            value = await self._invoke(entry, job, task, routing_key)
            if task in self._expired:  # the handler swallowed the watchdog's cancel
                raise asyncio.CancelledError
        except asyncio.CancelledError:
            if task not in self._expired:
                raise
            self._expired.discard(task)
            task.uncancel()
            return self._failure(
                routing_key, job, f"timed out after {timeout:g}s", time.perf_counter() - started
            )
        except PermanentError as exc:
            return self._failure(
                routing_key, job, with_traceback(exc), time.perf_counter() - started, dead=True
            )
        except Retry as exc:
            return self._failure(
                routing_key, job, _describe(exc), time.perf_counter() - started, delay=exc.delay
            )
        except BaseException as exc:  # a handler must never kill the worker
            return self._failure(
                routing_key, job, with_traceback(exc), time.perf_counter() - started
            )
        finally:
            self._deadlines.pop(task, None)
            self._running.pop(task, None)
        duration = time.perf_counter() - started
        if duration > timeout:
            # It returned, but only after blocking the loop past its deadline (the
            # deadline watchdog runs on the same loop, so it could not cancel it).
            return self._failure(
                routing_key,
                job,
                f"timed out after {timeout:g}s (the handler blocked the event loop for "
                f"{duration:.1f}s)",
                duration,
            )
        return self._success(routing_key, job, value, duration)

    def _invoke(self, entry: Any, job: Job, task: asyncio.Task[Any], routing_key: str) -> Any:
        """Call the handler: on the loop (registered for the watchdog thread) or in a
        thread; returns what to await for its value (no coroutine of its own per job).

        The job's ``set_progress`` reports through the worker's progress sender."""
        if self.progress is not None:
            # (Job's private attribute, set as pydantic's assignment would set it)
            job.__pydantic_private__["_progress_sink"] = self.progress(  # type: ignore[index]
                routing_key, job.id, job.attempts
            )
        if entry.is_async:
            coro = entry.fn(job)
            self._running[task] = (job.id, job.name, coro)
            return coro
        loop = asyncio.get_running_loop()
        # In the job's context (its log fields, its span): the pool's thread has none.
        context = contextvars.copy_context()
        return loop.run_in_executor(self.threads, context.run, entry.fn, job)

    def internal_error(self, routing_key: str, leased: Leased, exc: BaseException) -> Finished:
        """The outcome of a job whose run broke inside the runtime (not its handler): a
        failed attempt naming the error, retried like any failure, so the job never stays
        leased to a slot that is gone."""
        error = f"internal error of the worker: {_describe(exc)}"
        try:
            job = decode_job(leased.record, attempts=leased.attempt, status=JobStatus.PROCESSING)
        except ValueError:
            return self._unreadable(routing_key, leased, error)
        job.id = leased.id
        if record_problem(job) is not None:
            return self._unreadable(routing_key, leased, error)
        return self._failure(routing_key, job, error, 0.0)

    def _limits(self, job: Job, entry: HandlerEntry) -> float:
        """Apply the handler's defaults to ``job``; returns its time limit (seconds)."""
        if entry.max_retries is not None and not job.max_retries_set:
            job.max_retries = entry.max_retries
        if jobs_log.isEnabledFor(logging.INFO):
            jobs_log.info(
                "job %s (%s) started on %s, attempt %d of %d",
                job.id,
                job.name,
                job.routing_key,
                job.attempts,
                job.max_retries + 1,
                extra=self._context(job),
            )
        return job.timeout or entry.timeout or self.job_timeout

    def _context(
        self, job: Job, duration: float | None = None, error: str | None = None
    ) -> dict[str, object]:
        """The fields of a per-job log line (``logs.FIELDS``)."""
        return {
            "job_id": job.id,
            "job_name": job.name,
            "routing_key": job.routing_key,
            "attempt": job.attempts,
            "worker_id": self.worker_id,
            "duration_s": None if duration is None else round(duration, 6),
            "error": error,
        }

    def _success(self, routing_key: str, job: Job, value: Any, duration: float) -> Finished:
        try:
            encoded = encode(value)
        except TypeError as exc:
            return self._failure(
                routing_key, job, f"result is not JSON-serialisable: {exc}", duration, dead=True
            )
        if len(encoded) > self.max_result_bytes:
            return self._failure(
                routing_key,
                job,
                f"result is {len(encoded)} bytes, above the limit of {self.max_result_bytes}",
                duration,
                dead=True,
            )
        if jobs_log.isEnabledFor(logging.INFO):
            jobs_log.info(
                "job %s (%s) completed in %s",
                job.id,
                job.name,
                _took(duration),
                extra=self._context(job, duration),
            )
        body = self._result_body(
            job.id, JobStatus.COMPLETED, "", duration, orjson.Fragment(encoded)
        )
        outcome = Outcome(job.id, job.attempts, body, int(job.success_ttl * 1000))
        outcome.group = job.group or ""
        return Finished(
            routing_key,
            outcome,
            False,
            job.name,
            "completed",
            duration,
            job.priority,
            None if job.workflow_id is None else _step(job, encoded),
        )

    def _failure(
        self,
        routing_key: str,
        job: Job,
        error: str,
        duration: float,
        *,
        dead: bool = False,
        delay: float | None = None,
    ) -> Finished:
        dead = dead or job.attempts > job.max_retries
        retry_in = -1  # dead-letter now
        if not dead:
            wait = delay if delay is not None else backoff_delay(job.attempts, cap=self.backoff_cap)
            # after Redis' own clock (fail.lua); a handler's Retry(delay=) is bounded too
            wait = min(wait, MAX_DURATION_SECONDS) if wait == wait and wait > 0 else 0.0
            retry_in = round(wait * 1000)
        message, trace = split_error(error)
        if jobs_log.isEnabledFor(logging.INFO):
            jobs_log.info(
                "job %s (%s) failed attempt %d of %d after %s, %s: %s",
                job.id,
                job.name,
                job.attempts,
                job.max_retries + 1,
                _took(duration),
                "dead-lettered" if dead else "will retry",
                message,
                extra=self._context(job, duration, message),
            )
        body = self._result_body(job.id, JobStatus.FAILED, message, duration, traceback=trace)
        outcome = Outcome(job.id, job.attempts, body, int(job.failure_ttl * 1000), error, retry_in)
        outcome.group = job.group or ""
        return Finished(
            routing_key,
            outcome,
            True,
            job.name,
            "dead" if dead else "retried",
            duration,
            job.priority,
            _step(job, message) if dead and job.workflow_id is not None else None,
        )

    def _result_body(
        self,
        job_id: str,
        status: JobStatus,
        error: str,
        duration: float,
        result: Any = None,
        *,
        traceback: str = "",
    ) -> str:
        """A stored result record (a :class:`bananas.JobResult` as JSON)."""
        return result_record(job_id, status, error, duration, self.clock(), result, traceback)

    def _unreadable(self, routing_key: str, leased: Leased, error: str) -> Finished:
        name = _field(leased.record, "name") or "<unreadable>"
        body = self._result_body(leased.id, JobStatus.FAILED, error, 0.0)
        outcome = Outcome(
            leased.id, leased.attempt, body, int(DEFAULT_FAILURE_TTL * 1000), error, -1
        )
        outcome.group = _field(leased.record, "group")
        priority = _field(leased.record, "priority")
        return Finished(
            routing_key,
            outcome,
            True,
            name[:200],
            "dead",
            0.0,
            Priority(priority) if priority in Priority._value2member_map_ else Priority.NORMAL,
        )


def record_problem(job: Job) -> str | None:
    """What makes a decoded record unusable (a TTL or timeout Redis cannot store, a
    retry budget out of range), or None. A record written by some other producer can
    hold anything JSON can say, ``1e999`` included."""
    try:
        validate_duration(job.success_ttl, "success_ttl")
        validate_duration(job.failure_ttl, "failure_ttl")
        validate_optional_duration(job.timeout, "timeout")
        validate_count(job.max_retries, "max_retries")
    except InvalidJobError as exc:
        return str(exc)
    return None


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def with_traceback(exc: BaseException) -> str:
    """``Type: message``, a newline and the handler's traceback (its last
    :data:`~bananas.models.TRACEBACK_MAX` characters, the frames nearest the error)."""
    tb = exc.__traceback__
    # Leave out the frames of the worker itself (this module, the thread pool): the
    # traceback starts where the handler's code does.
    while tb is not None and tb.tb_next is not None and _is_ours(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    frames = "".join(traceback.format_exception(type(exc), exc, tb))
    if len(frames) > TRACEBACK_MAX:
        frames = TRACEBACK_HEAD + "  ...\n" + frames[-TRACEBACK_MAX:]
    return f"{_describe(exc)}\n{frames.rstrip()}"


def _took(seconds: float) -> str:
    return f"{seconds * 1000:.1f}ms" if seconds < 1 else f"{seconds:.2f}s"


def _is_ours(filename: str) -> bool:
    return filename == __file__ or filename.endswith(("concurrent/futures/thread.py",))


def _field(record: str, name: str) -> str:
    try:
        data = orjson.loads(record)
    except orjson.JSONDecodeError:
        return ""
    value = data.get(name) if isinstance(data, dict) else None
    return value if isinstance(value, str) else ""

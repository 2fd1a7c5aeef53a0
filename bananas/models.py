"""The data Bananas moves around: jobs, results, schedules and queue statistics.

A job record is written once, at submit, as JSON, and never rewritten: what
changes while a job lives (its delivery count, its last error, whether it is
leased) is kept beside it in Redis and merged in when a job is read back (see
``bananas.broker``). That keeps the worker's hot path free of JSON re-encoding.

Payloads and results are JSON values. Nothing is ever unpickled.
"""

from __future__ import annotations

import enum
import os
import threading
import uuid
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter

from bananas.routing import RoutingKey, validate_routing_key

T = TypeVar("T")

#: Version of the job record layout; a worker refuses (dead-letters) newer ones.
#: ``bananas.records`` writes it; it is defined here because ``Job.v`` defaults to it.
SCHEMA_VERSION = 1

DEFAULT_MAX_RETRIES = 3
DEFAULT_SUCCESS_TTL = 3600.0
DEFAULT_FAILURE_TTL = 86400.0
#: The longest duration, in seconds, any TTL, timeout, delay or lease may be (a century:
#: Redis' TIME in ms plus it stays exact in a Lua double and fits PEXPIRE; see
#: ``bananas.validation``).
MAX_DURATION_SECONDS = 100 * 365 * 24 * 3600
#: Longest wait between retries, in seconds (the cap of the exponential backoff).
DEFAULT_BACKOFF_CAP = 3600.0
#: Largest result a handler may return, in bytes.
DEFAULT_MAX_RESULT_BYTES = 1024 * 1024


class Priority(enum.StrEnum):
    """Job priority. A str enum, so ``"high"`` works wherever ``Priority.HIGH`` does."""

    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


PRIORITY_ORDER: tuple[Priority, Priority, Priority] = (Priority.HIGH, Priority.NORMAL, Priority.LOW)


class JobStatus(enum.StrEnum):
    """Where a job is in its life.

    - ``pending``: ready in its queue, waiting for a worker.
    - ``scheduled``: waiting for its time: a delayed job, or a retry in backoff.
    - ``processing``: leased to a worker that is running it.
    - ``completed``: the handler returned; the result is stored.
    - ``failed``: retries exhausted or a permanent error; the job is in the dead-letter queue.
    - ``cancelled``: cancelled before it started.
    """

    PENDING = "pending"
    SCHEDULED = "scheduled"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class _IdSource:
    """UUID4 ids from a buffer of OS randomness: one ``urandom`` call per 256 ids.

    ``uuid.uuid4()`` makes a system call per id, which dominated bulk submits.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._at = 0

    def __call__(self) -> str:
        with self._lock:
            if self._at >= len(self._buffer):
                self._buffer, self._at = os.urandom(16 * 256), 0
            raw = self._buffer[self._at : self._at + 16]
            self._at += 16
        return str(uuid.UUID(bytes=raw, version=4))


#: A fresh job id (a UUID4 string, like the seed's).
new_job_id = _IdSource()


def _parse(model: type[T], value: Any) -> T:
    if isinstance(model, type) and issubclass(model, BaseModel):
        return model.model_validate(value)
    return TypeAdapter(model).validate_python(value)


class Job(BaseModel):
    """A unit of work: a handler name and a JSON payload, plus delivery bookkeeping."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(default_factory=new_job_id)
    name: str
    description: str = ""
    payload: Any = None
    status: JobStatus = JobStatus.PENDING
    priority: Priority = Priority.NORMAL
    routing_key: RoutingKey = "default"
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    scheduled_for: datetime | None = None
    #: Deliveries so far, counting the one in progress (the lease token).
    attempts: int = 0
    #: Retries after the first run; the job runs at most ``max_retries + 1`` times.
    max_retries: int = DEFAULT_MAX_RETRIES
    #: Last error text (set after a failed attempt).
    error: str = ""
    #: Seconds the handler may run; None means the worker's JOB_TIMEOUT.
    timeout: float | None = None
    #: Seconds a successful result is kept.
    success_ttl: float = DEFAULT_SUCCESS_TTL
    #: Seconds a failure result is kept.
    failure_ttl: float = DEFAULT_FAILURE_TTL
    #: Its group (``submit(group=)``): served round robin with other groups, under limits.
    group: str | None = None
    #: The last ``set_progress`` of a running job: percent (0-100) and info, else None.
    progress: float | None = None
    progress_info: Any = None
    _progress_sink: Any = PrivateAttr(default=None)
    #: Schema version of the stored record.
    v: int = SCHEMA_VERSION

    def set_progress(self, percent: float, info: Any = None) -> None:
        """Report progress from a handler (sync or async): ``percent`` 0-100 and a JSON
        ``info``. Stored in Redis for ``get_job`` and pushed to ``watch``ers; sent by the
        worker in the background (the latest value wins), so it never blocks the
        handler. Outside a worker it does nothing. Raises ValueError for a percent
        outside 0-100.
        """
        if not 0 <= percent <= 100:
            raise ValueError(f"progress must be a percent from 0 to 100, got {percent!r}")
        self.progress, self.progress_info = float(percent), info
        if self._progress_sink is not None:
            self._progress_sink(float(percent), info)

    def unmarshal_payload(self, model: type[T]) -> T:
        """Parse the payload into ``model`` (a pydantic model, dataclass or any type).

        Raises pydantic's ``ValidationError`` when the payload does not fit.
        """
        return _parse(model, self.payload)

    def set_routing_key(self, routing_key: str) -> None:
        """Set the routing key after checking it (seed: ``SetRoutingKey``).

        Raises :class:`bananas.InvalidRoutingKeyError`.
        """
        self.routing_key = validate_routing_key(routing_key)


class JobResult(BaseModel):
    """What a finished job left behind."""

    job_id: str
    status: JobStatus
    result: Any = None
    error: str = ""
    completed_at: datetime = Field(default_factory=utcnow)
    #: Seconds the last attempt ran.
    duration: float = 0.0

    def is_success(self) -> bool:
        """True when the job completed."""
        return self.status is JobStatus.COMPLETED

    def is_failed(self) -> bool:
        """True when the job failed for good or was cancelled."""
        return self.status in (JobStatus.FAILED, JobStatus.CANCELLED)

    def unmarshal_result(self, model: type[T]) -> T:
        """Parse the result into ``model`` (a pydantic model, dataclass or any type)."""
        return _parse(model, self.result)


class ConcurrencyPolicy(enum.StrEnum):
    """What a cron fire does while the previous fire's job is still live (as in CronJob)."""

    ALLOW = "Allow"
    FORBID = "Forbid"
    REPLACE = "Replace"


class Schedule(BaseModel):
    """A cron schedule: fire ``job`` with ``payload`` at every match of ``cron`` in ``timezone``."""

    model_config = ConfigDict(extra="ignore")

    id: str
    cron: str
    job: str
    payload: Any = None
    priority: Priority = Priority.NORMAL
    #: Checked by ``validate_schedule`` (the :data:`RoutingKey` rule), not on parsing: a
    #: schedule stored with a bad key must still load, so the scheduler can skip it and
    #: record why in its status instead of failing every schedule's tick.
    routing_key: str = "default"
    timezone: str = "UTC"
    enabled: bool = True
    description: str = ""
    concurrency_policy: ConcurrencyPolicy = ConcurrencyPolicy.ALLOW
    #: A slot missed by more than this many seconds is skipped; None: only the latest missed
    #: slot is fired (once), older ones are skipped.
    starting_deadline_seconds: float | None = None
    max_retries: int = DEFAULT_MAX_RETRIES


class ScheduleStatus(BaseModel):
    """What the scheduler last did with a schedule."""

    schedule_id: str
    last_schedule_time: datetime | None = None
    next_schedule_time: datetime | None = None
    last_successful_time: datetime | None = None
    last_error: str = ""
    last_job_id: str = ""
    run_count: int = 0
    skipped_count: int = 0


class JobEvent(BaseModel):
    """One change seen by ``watch``: the status, the last progress, and the result at the end."""

    job_id: str
    status: JobStatus
    progress: float | None = None
    progress_info: Any = None
    #: Set on the last event only: the job finished (completed, failed or cancelled).
    result: JobResult | None = None


class QueueStats(BaseModel):
    """A snapshot of one routing key's queues."""

    routing_key: str
    depth: dict[Priority, int]
    scheduled: int
    in_flight: int
    dead: int
    #: Seconds the oldest ready job has waited; None when nothing is ready.
    oldest_age: float | None = None
    #: Priorities paused on this routing key (``Client.pause``): their jobs wait, unfetched.
    paused: list[Priority] = Field(default_factory=list)

    @property
    def queued(self) -> int:
        """Ready jobs over all priorities."""
        return sum(self.depth.values())


class WorkerInfo(BaseModel):
    """A worker's heartbeat record."""

    id: str
    host: str
    pid: int
    routing_keys: list[str]
    priorities: list[Priority]
    concurrency: int
    in_flight: int = 0
    processed: int = 0
    failed: int = 0
    started_at: datetime = Field(default_factory=utcnow)
    last_seen: datetime = Field(default_factory=utcnow)
    mode: str = "default"

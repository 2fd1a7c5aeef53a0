"""The data Bananas moves around: jobs, results, schedules and queue statistics.

A job record is written once, at submit, as JSON, and never rewritten: what
changes while a job lives (its delivery count, its last error, whether it is
leased) is kept beside it in Redis and merged in when a job is read back (see
``bananas.broker``). That keeps the worker's hot path free of JSON re-encoding.

Payloads and results are JSON values. Nothing is ever unpickled.
"""

from __future__ import annotations

import enum
import hashlib
import os
import threading
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
#: The most of a failed attempt's traceback that is kept with the job (characters).
TRACEBACK_MAX = 4000
#: How every kept traceback starts (also where it is told apart from the error message).
TRACEBACK_HEAD = "Traceback (most recent call last):\n"
#: Between the attempts of a job's stored error history (newest first).
ATTEMPT_SEPARATOR = "\n\x1e\n"
#: The most of a job's error history that is kept (characters; oldest attempts go first).
ERROR_HISTORY_MAX = 16_000
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
    A forked child starts with an empty buffer and a new lock: sharing the parent's
    unused bytes would give both processes the same ids, and enqueue would drop the
    second job as a duplicate.
    """

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._at = 0

    def __call__(self) -> str:
        with self._lock:
            if self._at >= len(self._buffer):
                self._buffer, self._at = os.urandom(16 * 256), 0
            raw = self._buffer[self._at : self._at + 16]
            self._at += 16
        # str(uuid.UUID(bytes=raw, version=4)) without the UUID object: the version
        # nibble set to 4, the variant's two top bits to 10 (tested against uuid).
        h = raw.hex()
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


_VARIANT = "89ab"


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
    #: False when the submitter left ``max_retries`` out, so a handler's own default
    #: (``Registry.handler(max_retries=...)``) applies.
    max_retries_set: bool = True
    #: Last error text (set after a failed attempt).
    error: str = ""
    #: The traceback of the last failed attempt, bounded (empty when there was none).
    traceback: str = ""
    #: The errors of the attempts before the last one, newest first (bounded).
    earlier_errors: list[str] = Field(default_factory=list)
    #: Seconds the handler may run; None means the worker's JOB_TIMEOUT.
    timeout: float | None = None
    #: Seconds a successful result is kept.
    success_ttl: float = DEFAULT_SUCCESS_TTL
    #: Seconds a failure result is kept.
    failure_ttl: float = DEFAULT_FAILURE_TTL
    #: Its group (``submit(group=)``): served round robin with other groups, under limits.
    group: str | None = None
    #: The last ``set_progress`` of a running job's current attempt: percent (0-100) and info,
    #: else None (what an earlier, reaped attempt reported is not shown).
    progress: float | None = None
    progress_info: Any = None
    _progress_sink: Any = PrivateAttr(default=None)
    #: Schema version of the stored record.
    v: int = SCHEMA_VERSION
    #: Headers carried from the submit to the worker: the submitting span's W3C trace
    #: context (``traceparent``, ``tracestate``) when tracing is on (``bananas.tracing``);
    #: empty otherwise, and in records written before it existed.
    meta: dict[str, str] = Field(default_factory=dict)
    #: The workflow this job is a step of (``client.submit_workflow``); None for a plain job.
    workflow_id: str | None = None
    #: This step's node number in its workflow.
    node: int | None = None
    #: The results of the steps this one waited for, in order: the previous step's
    #: result in a chain, the members' results for a chord callback, the children's for a
    #: parent. None in the place of one that was dead-lettered (``on_failure="mark"``).
    parent_results: list[Any] = Field(default_factory=list)
    #: Empty, unless a step this one waited for was dead-lettered: then one entry per
    #: ``parent_results`` entry, its error text, or "" for a step that completed.
    parent_errors: list[str] = Field(default_factory=list)

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
    #: The traceback of the failed handler, bounded (empty when there was none).
    traceback: str = ""
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

    def timing(self) -> str:
        """A digest of what decides *when* the schedule fires: its expression and time zone.

        The scheduler stores it with the schedule's next slot; when an edit changes it,
        the next slot is computed afresh from the new expression (the edit applies at once).
        """
        return hashlib.sha256(f"{self.cron}\x00{self.timezone}".encode()).hexdigest()[:16]


class ScheduleStatus(BaseModel):
    """What the scheduler last did with a schedule."""

    schedule_id: str
    #: :meth:`Schedule.timing` of the definition ``next_schedule_time`` was computed from
    #: (empty in a status written before it was recorded).
    timing: str = ""
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
    #: Scheduled jobs (delayed, or retries in backoff) due by now plus the window asked for.
    due: int = 0
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
    #: True while this process leads the cron scheduler.
    cron_leader: bool = False
    #: The Kubernetes pod the worker runs in (POD_NAME), empty outside Kubernetes.
    #: The operator matches heartbeats to pods by it to scale down idle pods first.
    pod_name: str = ""
    #: Jobs leased to this worker right now (at most its concurrency): id -> when leased.
    running: dict[str, datetime] = Field(default_factory=dict)


class WorkflowStatus(enum.StrEnum):
    """Where a workflow is (``client.get_workflow``).

    - ``running``: some nodes have not finished.
    - ``completed``: every node finished; ``WorkflowInfo.result`` holds the result.
    - ``failed``: a node was dead-lettered and nothing tolerates it; requeueing that
      node's job from the dead-letter queue resumes the workflow.
    - ``cancelled``: ``cancel_workflow`` stopped it.
    """

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class NodeState(enum.StrEnum):
    """Where one node of a workflow is."""

    #: Waits for the nodes it depends on.
    WAITING = "waiting"
    #: Its job is queued (or running: the job's own status says which).
    QUEUED = "queued"
    DONE = "done"
    #: Its job was dead-lettered; ``error`` says why.
    DEAD = "dead"
    #: The workflow was cancelled before this node was queued.
    CANCELLED = "cancelled"


class NodeKind(enum.StrEnum):
    """A node runs a job (``task``) or only joins the nodes before it (``join``)."""

    TASK = "task"
    JOIN = "join"


class WorkflowNode(BaseModel):
    """One node of a workflow as ``get_workflow`` reports it."""

    index: int
    kind: NodeKind = NodeKind.TASK
    #: The handler name; "" for a join.
    name: str = ""
    routing_key: str = ""
    #: The id of this node's job (``<workflow id>:<index>``); "" for a join.
    job_id: str = ""
    state: NodeState = NodeState.WAITING
    #: The nodes it waits for.
    deps: list[int] = Field(default_factory=list)
    result: Any = None
    error: str = ""


class WorkflowInfo(BaseModel):
    """A workflow's state: every node's status, result or error (``get_workflow``)."""

    id: str
    name: str = ""
    status: WorkflowStatus
    created_at: datetime | None = None
    #: When it completed, failed or was cancelled.
    finished_at: datetime | None = None
    nodes: list[WorkflowNode] = Field(default_factory=list)
    #: The workflow's result once completed: the last step's result for a chain, the
    #: list of member results for a group, the callback's for a chord (nested shapes nest).
    result: Any = None
    #: The error of the node that failed the workflow, and that node's index.
    error: str = ""
    failed_node: int | None = None
    #: The result's shape: node indexes, nested in lists.
    output: Any = None

    def is_finished(self) -> bool:
        """True when it completed or was cancelled (a failed one can still resume)."""
        return self.status in (WorkflowStatus.COMPLETED, WorkflowStatus.CANCELLED)

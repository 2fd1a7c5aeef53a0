"""The SDK's entry points: :class:`Client` (sync) and :class:`AsyncClient`.

Both are thin: every method builds an operation in :class:`ClientCore` (validation,
record encoding and the broker calls, written once) and drives it on its own kind of
connection. The seed's Go names (``submit_job``, ``submit_job_with_route``, ...) are
kept as aliases of the Python ones; ``docs/api.md`` maps each of them.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypedDict, TypeVar, Unpack

import redis

from bananas import tracing
from bananas.broker import (
    ID_INDEX_SLACK_MS,
    JOB_STATES,
    Broker,
    CancelCode,
    DeadJob,
    NewJob,
    Unique,
)
from bananas.connection import DEFAULT_URL, connect_async, connect_sync, parse_url
from bananas.errors import (
    InvalidJobError,
    JobNotFoundError,
    PayloadTooLargeError,
    RedisOutOfMemoryError,
    WaitTimeoutError,
)
from bananas.eviction import (
    CheckMode,
    aread_maxmemory,
    aread_policy,
    judge,
    read_maxmemory,
    read_policy,
    with_limit,
)
from bananas.keys import KeySpace
from bananas.models import (
    DEFAULT_FAILURE_TTL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_SUCCESS_TTL,
    PRIORITY_ORDER,
    Job,
    JobEvent,
    JobResult,
    JobStatus,
    Priority,
    QueueStats,
    Schedule,
    ScheduleStatus,
    WorkerInfo,
    WorkflowInfo,
    WorkflowStatus,
    new_job_id,
)
from bananas.ops import Op, command
from bananas.records import canonical_hash, encode, job_record, result_record
from bananas.transport import (
    AsyncRedis,
    FastLane,
    SyncRedis,
    fast_lane,
    lane_pool,
    run_async,
    run_sync,
    sync_lane,
)
from bananas.validation import (
    check_finite,
    limit_spec,
    seconds,
    validate_count,
    validate_duration,
    validate_group,
    validate_job_name,
    validate_limit_key,
    validate_optional_duration,
    validate_priority,
    validate_routing_key,
    validate_schedule,
    validate_timeout,
)
from bananas.waits import WaitHub
from bananas.workflow_store import NodeDefaults, WorkflowStore
from bananas.workflows import Flow

DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024
#: Epoch seconds past which a due time cannot be stored (datetime's last year).
LATEST_DUE = datetime(9999, 12, 31, tzinfo=UTC).timestamp()
#: How long a debounce lock outlives the job's due time (a pending job still takes submits).
DEBOUNCE_LOCK_SLACK = 60.0
#: Jobs per enqueue script call in ``submit_many``.
BULK_BATCH = 500
Progress = Callable[[int], None]
T = TypeVar("T")


@dataclass
class JobSpec:
    """One job to submit: the one definition of the submit options and their defaults.

    :meth:`Client.submit_many` takes these; ``submit`` and ``submit_and_wait`` (sync and
    async) take the same fields as keyword arguments, typed by :class:`SubmitOptions`.
    """

    #: Handler name (what the worker's registry runs).
    name: str
    #: A JSON value.
    payload: Any = None
    #: ``high``, ``normal`` or ``low``.
    priority: Priority | str = Priority.NORMAL
    #: Which workers may run it (see :data:`bananas.routing.ROUTING_KEY_RULE`).
    routing_key: str = "default"
    description: str = ""
    #: Retries after the first run; None: the client's ``max_retries``.
    max_retries: int | None = None
    #: Seconds the handler may run (more than 0; a Go duration string like ``"90s"``
    #: too); None: the handler's default, else the worker's JOB_TIMEOUT.
    timeout: float | str | None = None
    #: Seconds from now until it is due, or a Go duration string (``"10m"``); give this
    #: or ``scheduled_for``.
    delay: float | str | None = None
    #: When it is due, timezone-aware.
    scheduled_for: datetime | None = None
    #: Its id; the same id twice stores and runs one job, on any routing key. None: a new id.
    job_id: str | None = None
    #: Seconds: while a job with the same unique key is scheduled, queued or running (and
    #: at most this long), another submit returns that job's id and stores nothing.
    unique_for: float | None = None
    #: The unique key (``unique_for`` / ``debounce``). None: the job name plus a hash of
    #: the payload for ``unique_for``; the job name for ``debounce``.
    unique_key: str | None = None
    #: Seconds: the job is due this long after the last submit with its unique key; a
    #: submit while it is still pending replaces its payload and pushes its due time.
    debounce: float | None = None
    #: Its group (e.g. ``"tenant:42"``): inside a routing key and priority, ready jobs are
    #: served round robin across groups, and a group's limits (``set_limit``) apply.
    group: str | None = None
    #: Seconds its result is kept when it completes / fails; None: the client's.
    success_ttl: float | None = None
    failure_ttl: float | None = None


class JobOptions(TypedDict, total=False):
    """:class:`JobSpec`'s optional fields but ``timeout``, as keyword arguments."""

    priority: Priority | str
    routing_key: str
    description: str
    max_retries: int | None
    delay: float | str | None
    scheduled_for: datetime | None
    job_id: str | None
    unique_for: float | None
    unique_key: str | None
    debounce: float | None
    group: str | None
    success_ttl: float | None
    failure_ttl: float | None


class SubmitOptions(JobOptions, total=False):
    """:class:`JobSpec`'s optional fields, as ``submit``'s keyword arguments."""

    timeout: float | str | None


def _bounded(value: Any, what: str, parse: Callable[[Any], float | None]) -> float | None:
    """A duration option: a number is checked against what Redis can store first (so
    ``1e20``, ``inf`` and NaN are refused naming the bound), then ``parse`` reads it (a
    Go duration string included) and the result is bounded too."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        validate_duration(value, what)
    return validate_optional_duration(parse(value), what)


def _sending(spans: list[Any], op: Op[T]) -> Op[T]:
    """Drive ``op`` (a submit), then end the producer spans it started, failed if it raised."""
    try:
        result = yield from op
    except BaseException as exc:
        tracing.end_send(spans, exc)
        raise
    tracing.end_send(spans)
    return result


class ClientCore:
    """The logic of both clients, written once as operations: validation, record
    building and the broker calls. No I/O happens here; ``Client`` and ``AsyncClient``
    only drive what these methods return."""

    def __init__(
        self,
        *,
        success_ttl: float,
        failure_ttl: float,
        max_payload_bytes: int,
        max_retries: int,
        prefix: str,
        clock: Callable[[], float],
        cluster: bool = False,
    ) -> None:
        validate_duration(success_ttl, "success_ttl")
        validate_duration(failure_ttl, "failure_ttl")
        validate_count(max_retries, "max_retries")
        # The due indexes live outside every routing key's slot: not on Redis Cluster.
        self.broker = Broker(KeySpace(prefix), clock=clock, due_index=not cluster)
        self.clock = clock
        self.success_ttl = success_ttl
        self.failure_ttl = failure_ttl
        self.max_payload_bytes = max_payload_bytes
        self.max_retries = max_retries
        self._known_routes: set[str] = set()
        self.workflows = WorkflowStore(self.broker, clock=clock)

    # -- building jobs -------------------------------------------------------------------

    def build(self, spec: JobSpec, spans: list[Any] | None = None) -> NewJob:
        """Validate ``spec`` and encode its record; raises :class:`InvalidJobError`.

        With tracing on (``bananas.tracing``) and ``spans`` given, the job's producer
        span is started and appended to ``spans`` (the caller ends it after the
        enqueue), and its trace context goes into the record."""
        name = validate_job_name(spec.name)
        priority = validate_priority(spec.priority)
        routing_key = validate_routing_key(spec.routing_key)
        max_retries = self.max_retries if spec.max_retries is None else spec.max_retries
        validate_count(max_retries, "max_retries")
        timeout = _bounded(spec.timeout, "timeout", validate_timeout)
        delay = _bounded(spec.delay, "delay", lambda v: seconds(v, "delay"))
        try:
            encoded = encode(spec.payload)
        except TypeError as exc:
            raise InvalidJobError(
                f"payload of job {name!r} is not JSON-serialisable: {exc}"
            ) from None
        check_finite(spec.payload, encoded)
        size = len(encoded)
        if size > self.max_payload_bytes:
            raise PayloadTooLargeError(
                f"payload of job {name!r} is {size} bytes, above the limit of "
                f"{self.max_payload_bytes} bytes (max_payload_bytes)"
            )
        now = self.clock()
        unique = self._unique(spec, name)
        group = None if spec.group is None else validate_group(spec.group)
        success_ttl = self.success_ttl if spec.success_ttl is None else spec.success_ttl
        failure_ttl = self.failure_ttl if spec.failure_ttl is None else spec.failure_ttl
        validate_duration(success_ttl, "success_ttl")
        validate_duration(failure_ttl, "failure_ttl")
        if group is not None and unique is not None:
            raise InvalidJobError("a job of a group can't be unique or debounced (not supported)")
        if spec.debounce is not None:  # checked by _unique: seconds > 0
            delay = float(spec.debounce)
        due = now + delay if delay else 0.0
        if spec.scheduled_for is not None:
            if delay:
                raise InvalidJobError("give either delay or scheduled_for, not both")
            if spec.scheduled_for.tzinfo is None:
                raise InvalidJobError("scheduled_for must be timezone-aware (e.g. UTC)")
            due = spec.scheduled_for.timestamp()
        if due >= LATEST_DUE:
            raise InvalidJobError(f"job {name!r} would be due after the year 9999 (delay)")
        job_id = new_job_id() if spec.job_id is None else spec.job_id
        if not isinstance(job_id, str) or not 0 < len(job_id) <= 200:
            raise InvalidJobError("job_id must be a non-empty string of at most 200 characters")
        scheduled = due > now
        meta = None
        if spans is not None and (tracer := tracing.tracer()) is not None:
            span, meta = tracing.start_send(tracer, routing_key, job_id, name)
            spans.append(span)
        record = job_record(
            job_id=job_id,
            name=name,
            description=spec.description,
            payload=encoded,
            priority=priority,
            routing_key=routing_key,
            created=now,
            due=due if scheduled else None,
            max_retries=max_retries,
            max_retries_set=spec.max_retries is not None,
            timeout=timeout,
            success_ttl=success_ttl,
            failure_ttl=failure_ttl,
            group=group,
            meta=meta,
        )
        # A delay counts from Redis' own clock (enqueue.lua adds it to TIME); only an
        # explicit scheduled_for is a time on the caller's clock.
        delay_ms = round(delay * 1000) if delay else 0
        at_ms = int(due * 1000) if scheduled and not delay_ms else 0
        return NewJob(
            job_id,
            routing_key,
            priority,
            at_ms,
            record,
            delay_ms,
            explicit_id=spec.job_id is not None,
            unique=unique,
            group=group,
            kept_ms=int(max(success_ttl, failure_ttl) * 1000),
        )

    def _unique(self, spec: JobSpec, name: str) -> Unique | None:
        """The unique key of ``spec`` (None without ``unique_for`` / ``debounce``).

        Raises :class:`InvalidJobError` for options that contradict each other.
        """
        if spec.unique_for is None and spec.debounce is None:
            if spec.unique_key is not None:
                raise InvalidJobError("unique_key needs unique_for or debounce")
            return None
        if spec.unique_for is not None and spec.debounce is not None:
            raise InvalidJobError("give either unique_for or debounce, not both")
        if spec.job_id is not None:
            raise InvalidJobError("job_id and unique_for/debounce both deduplicate: give one")
        window = spec.debounce if spec.debounce is not None else spec.unique_for
        if not isinstance(window, int | float) or window <= 0 or window >= LATEST_DUE:
            raise InvalidJobError(f"unique_for/debounce must be seconds > 0, got {window!r}")
        key = spec.unique_key
        if key is None:
            key = name if spec.debounce is not None else f"{name}:{canonical_hash(spec.payload)}"
        if not isinstance(key, str) or not 0 < len(key) <= 200:
            raise InvalidJobError("unique_key must be a non-empty string of at most 200 characters")
        if spec.debounce is not None:
            if spec.delay or spec.scheduled_for is not None:
                raise InvalidJobError("debounce sets the due time: give no delay or scheduled_for")
            return Unique(key, int((window + DEBOUNCE_LOCK_SLACK) * 1000), debounce=True)
        return Unique(key, int(window * 1000))

    def _remember_routes(self, routing_keys: Iterable[str]) -> Op[None]:
        new = set(routing_keys) - self._known_routes
        if new:
            yield from self.broker.add_routes(new)
            self._known_routes |= new

    def _claim(self, job: NewJob) -> Op[str]:
        """Claim an explicit id prefix-wide (step 1 of its enqueue); returns its owner.

        The owner is the job's own routing key when the id is free, already this
        key's, or held by a claim whose routing key has neither the job nor its result
        (an enqueue interrupted after its claim, or a job long gone). Otherwise the
        job is a duplicate of the owner's and must not be stored.
        """
        # scheduled_for is a time on the caller's clock (NewJob.due_ms), so is this wait
        wait_ms = max(job.due_ms - int(self.clock() * 1000), 0) + job.delay_ms
        ttl_ms = wait_ms + job.kept_ms + ID_INDEX_SLACK_MS
        owner, ours = yield from self.broker.claim_id(job.id, job.routing_key, ttl_ms)
        if ours or (yield from self.broker.holds(owner, job.id)):
            return owner
        owner, _ = yield from self.broker.claim_id(
            job.id, job.routing_key, ttl_ms, stale_owner=owner
        )
        return owner

    def _store(self, jobs: list[NewJob]) -> Op[dict[str, str]]:
        """Claim the explicit ids, then enqueue what is ours; returns id -> owning route.

        A job under a unique key is stored on its own (enqueue_unique.lua) and maps to the
        id of the job that holds the key.
        """
        owners: dict[str, str] = {}
        for job in jobs:
            if job.unique is not None:
                yield from self._remember_routes((job.routing_key,))
                holder, _ = yield from self.broker.enqueue_unique(job)
                job.id = holder
                owners[holder] = job.routing_key
                continue
            owners[job.id] = (yield from self._claim(job)) if job.explicit_id else job.routing_key
        by_route: dict[str, list[NewJob]] = defaultdict(list)
        for job in jobs:
            if job.unique is None and owners[job.id] == job.routing_key:
                by_route[job.routing_key].append(job)
        yield from self._remember_routes(by_route)
        for routing_key, group in by_route.items():
            for start in range(0, len(group), BULK_BATCH):
                yield from self.broker.enqueue(routing_key, group[start : start + BULK_BATCH])
        return owners

    # -- operations ----------------------------------------------------------------------

    def submit(self, spec: JobSpec) -> Op[str]:
        job_id, _ = yield from self._submit(spec)
        return job_id

    def _submit(self, spec: JobSpec) -> Op[tuple[str, str]]:
        """Submit one job; returns its id and the routing key that holds it."""
        spans: list[Any] = []
        return (yield from _sending(spans, self._place(self.build(spec, spans))))

    def _place(self, job: NewJob) -> Op[tuple[str, str]]:
        """Store one built job; returns its id and the routing key that holds it."""
        if job.explicit_id or job.unique is not None:
            owners = yield from self._store([job])
            return job.id, owners[job.id]
        yield from self._remember_routes((job.routing_key,))
        yield from self.broker.enqueue(job.routing_key, [job])
        return job.id, job.routing_key

    def submit_many(self, specs: Iterable[JobSpec | Mapping[str, Any]]) -> Op[list[str]]:
        spans: list[Any] = []

        def build_and_store() -> Op[list[NewJob]]:
            jobs = [self.build(s if isinstance(s, JobSpec) else JobSpec(**s), spans) for s in specs]
            yield from self._store(jobs)
            return jobs

        jobs = yield from _sending(spans, build_and_store())
        return [j.id for j in jobs]

    def _route_of(self, job_id: str, routing_key: str | None) -> Op[str | None]:
        if routing_key is not None:
            return validate_routing_key(routing_key)
        found = yield from self.broker.find_route(job_id)
        return found

    def get_job(self, job_id: str, routing_key: str | None) -> Op[Job | None]:
        route = yield from self._route_of(job_id, routing_key)
        if route is None:
            return None
        found = yield from self.broker.inspect(route, job_id)
        return found

    def get_result(self, job_id: str, routing_key: str | None) -> Op[JobResult | None]:
        route = yield from self._route_of(job_id, routing_key)
        if route is None:
            return None
        found = yield from self.broker.result(route, job_id)
        return found

    def wait_for_result(
        self, job_id: str, timeout: float, routing_key: str | None
    ) -> Op[JobResult]:
        route = yield from self._route_of(job_id, routing_key)
        if route is None:
            raise JobNotFoundError(job_id)
        found = yield from self.broker.wait_result(route, job_id, timeout)
        if found is None:
            raise WaitTimeoutError(job_id, timeout)
        return found

    # -- watch: the steps both clients' iterators drive --------------------------------------

    def watch_open(self, job_id: str, routing_key: str | None) -> Op[tuple[str, str, JobEvent]]:
        """Register a watcher; returns (route, watch list, the first event)."""
        route = yield from self._route_of(job_id, routing_key)
        if route is None:
            raise JobNotFoundError(job_id)
        key = yield from self.broker.watch_start(route, job_id, new_job_id())
        job = yield from self.broker.inspect(route, job_id)
        status = JobStatus.PENDING if job is None else job.status
        first = JobEvent(job_id=job_id, status=status)
        if job is not None:
            first.progress, first.progress_info = job.progress, job.progress_info
        return route, key, first

    def watch_next(
        self, route: str, job_id: str, key: str, last: JobEvent, until: float
    ) -> Op[JobEvent | None]:
        """Block until something changes: the next event (with ``result`` when the job
        finished), or None when ``until`` (monotonic) passed first."""
        while True:
            done = yield from self.broker.result(route, job_id)
            if done is not None:
                return JobEvent(
                    job_id=job_id,
                    status=done.status,
                    progress=last.progress,
                    progress_info=last.progress_info,
                    result=done,
                )
            remaining = until - time.monotonic()
            if remaining <= 0:
                return None
            woke = yield from self.broker.watch_wait(route, job_id, key, remaining)
            if woke == "progress":
                reported = yield from self.broker.progress(route, job_id)
                if reported is not None and reported != (last.progress, last.progress_info):
                    return JobEvent(
                        job_id=job_id,
                        status=JobStatus.PROCESSING,
                        progress=reported[0],
                        progress_info=reported[1],
                    )

    def submit_and_wait(self, spec: JobSpec, timeout: float) -> Op[JobResult]:
        job_id, route = yield from self._submit(spec)
        found = yield from self.broker.wait_result(route, job_id, timeout)
        if found is None:
            raise WaitTimeoutError(job_id, timeout)
        return found

    def cancel(self, job_id: str, routing_key: str | None) -> Op[bool]:
        route = yield from self._route_of(job_id, routing_key)
        if route is None:
            raise JobNotFoundError(job_id)
        result = result_record(job_id, JobStatus.CANCELLED, "cancelled", 0.0, self.clock())
        outcome = yield from self.broker.cancel(route, job_id, result, int(self.failure_ttl * 1000))
        if outcome is CancelCode.MISSING:
            raise JobNotFoundError(job_id)
        return outcome is CancelCode.CANCELLED

    def all_stats(self) -> Op[list[QueueStats]]:
        routes = yield from self.broker.routes()
        out = []
        for route in routes:
            out.append((yield from self.broker.stats(route)))
        return out

    def requeue_all_dead(self, routing_key: str, progress: Progress | None) -> Op[int]:
        validate_routing_key(routing_key)
        total = 0
        while True:
            ids = yield from self.broker.dead_ids(routing_key, BULK_BATCH)
            if not ids:
                return total
            # resume before the requeue: a job that fails again at once must find its
            # node queued (see requeue_dead below)
            yield from self.workflows.resume_requeued(ids)
            total += yield from self.broker.requeue_dead(routing_key, ids)
            if progress:
                progress(total)

    def purge_dead(self, routing_key: str, progress: Progress | None) -> Op[int]:
        validate_routing_key(routing_key)
        total = 0
        while True:
            removed = yield from self.broker.purge_dead(routing_key, BULK_BATCH)
            if not removed:
                return total
            total += removed
            if progress:
                progress(total)

    def pause(
        self, routing_key: str, priorities: Iterable[Priority | str] | None, *, paused: bool
    ) -> Op[list[Priority]]:
        rk = validate_routing_key(routing_key)
        chosen = (
            PRIORITY_ORDER if priorities is None else [validate_priority(p) for p in priorities]
        )
        yield from self._remember_routes((rk,))
        now = yield from self.broker.pause(rk, chosen, paused=paused)
        return now

    def set_limit(
        self,
        key: str,
        rate: str | None,
        concurrency: int | None,
        burst: int | None,
        routing_key: str,
    ) -> Op[None]:
        spec = limit_spec(rate, concurrency, burst)
        yield from self.broker.set_limit(
            validate_routing_key(routing_key), validate_limit_key(key), spec
        )

    def limits(self, routing_key: str) -> Op[dict[str, str]]:
        found = yield from self.broker.limits(validate_routing_key(routing_key))
        return found

    def set_retention(
        self, routing_key: str, max_dead: int | None, max_dead_age: float | None
    ) -> Op[None]:
        rk = validate_routing_key(routing_key)
        if max_dead is not None:
            validate_count(max_dead, "max_dead")
        age_ms = None
        if max_dead_age is not None:
            age_ms = int(validate_duration(max_dead_age, "max_dead_age", positive=True) * 1000)
        yield from self.broker.set_retention(rk, max_dead, age_ms)

    def paused(self) -> Op[dict[str, list[Priority]]]:
        routes = yield from self.broker.routes()
        found = yield from self.broker.paused_routes(routes)
        return found

    def queue_stats(self, routing_key: str, due_within: float = 0.0) -> Op[QueueStats]:
        found = yield from self.broker.stats(validate_routing_key(routing_key), due_within)
        return found

    def dead_letters(self, routing_key: str, offset: int, count: int) -> Op[list[DeadJob]]:
        rows = yield from self.broker.dead_letters(validate_routing_key(routing_key), offset, count)
        return rows

    def requeue_dead(self, job_id: str, routing_key: str) -> Op[bool]:
        rk = validate_routing_key(routing_key)
        # A workflow's node is resumed BEFORE its job is requeued: a job that is dead-lettered
        # again at once then finds its node queued, and fails the workflow again.
        resumed = yield from self.workflows.resume_requeued([job_id])
        moved = yield from self.broker.requeue_dead(rk, [job_id])
        if resumed and not moved:
            yield from self.workflows.fail_requeued(job_id)
        return moved == 1

    def register_schedule(self, schedule: Schedule) -> Op[None]:
        yield from self.broker.put_schedule(validate_schedule(schedule))

    def unregister_schedule(self, schedule_id: str) -> Op[bool]:
        removed = yield from self.broker.delete_schedule(schedule_id)
        return removed

    def schedules(self) -> Op[list[Schedule]]:
        found = yield from self.broker.schedules()
        return found

    def schedule_status(self, schedule_id: str) -> Op[ScheduleStatus | None]:
        found = yield from self.broker.schedule_status(schedule_id)
        return found

    def workers(self) -> Op[list[WorkerInfo]]:
        found = yield from self.broker.workers()
        return found

    def run_now(self, job_id: str, routing_key: str | None) -> Op[bool]:
        route = yield from self._route_of(job_id, routing_key)
        if route is None:
            raise JobNotFoundError(job_id)
        moved = yield from self.broker.run_now(route, job_id)
        return moved

    def delete_dead(self, job_id: str, routing_key: str | None) -> Op[bool]:
        route = yield from self._route_of(job_id, routing_key)
        if route is None:
            return False
        deleted = yield from self.broker.delete_dead(route, job_id)
        return deleted

    def list_jobs(
        self, state: str, routing_key: str, offset: int, count: int
    ) -> Op[tuple[list[Job], int]]:
        if state not in JOB_STATES:
            raise InvalidJobError(f"unknown state {state!r}: use one of {', '.join(JOB_STATES)}")
        found = yield from self.broker.list_jobs(
            validate_routing_key(routing_key), state, offset, count
        )
        return found

    def all_schedules(self) -> Op[list[tuple[Schedule, str, ScheduleStatus | None]]]:
        in_redis = yield from self.broker.schedules()
        in_code = yield from self.broker.code_schedules()
        registered = {s.id for s in in_redis}  # a registered schedule wins on the same id
        listed = [(s, "redis") for s in in_redis]
        listed += [(s, "code") for s in in_code if s.id not in registered]
        statuses = yield from self.broker.schedule_statuses([s.id for s, _ in listed])
        return [(s, source, st) for (s, source), st in zip(listed, statuses, strict=True)]

    def forget_route(self, routing_key: str) -> Op[bool]:
        forgotten = yield from self.broker.forget_route(validate_routing_key(routing_key))
        return forgotten

    def ping(self) -> Op[bool]:
        reply = yield command("PING")
        return bool(reply)

    # -- workflows -----------------------------------------------------------------------

    def node_defaults(self) -> NodeDefaults:
        return NodeDefaults(
            max_retries=self.max_retries,
            success_ttl=self.success_ttl,
            failure_ttl=self.failure_ttl,
            max_payload_bytes=self.max_payload_bytes,
        )

    def submit_workflow(self, flow: Flow, workflow_id: str | None, name: str) -> Op[str]:
        wf_id = workflow_id or new_job_id()
        if not isinstance(wf_id, str) or not 0 < len(wf_id) <= 200:
            raise InvalidJobError(
                "workflow_id must be a non-empty string of at most 200 characters"
            )
        found = yield from self.workflows.submit(
            flow, self.node_defaults(), workflow_id=wf_id, name=name
        )
        return found

    def get_workflow(self, workflow_id: str) -> Op[WorkflowInfo | None]:
        found = yield from self.workflows.workflow_inspect(workflow_id)
        return found

    def wait_for_workflow(self, workflow_id: str, timeout: float) -> Op[WorkflowInfo]:
        status = yield from self.workflows.wait(workflow_id, timeout)
        if status is None:
            raise JobNotFoundError(workflow_id)
        if status is WorkflowStatus.RUNNING:
            raise WaitTimeoutError(workflow_id, timeout, "workflow")
        found = yield from self.workflows.workflow_inspect(workflow_id)
        if found is None:
            raise JobNotFoundError(workflow_id)
        return found

    def submit_workflow_and_wait(
        self, flow: Flow, timeout: float, workflow_id: str | None, name: str
    ) -> Op[WorkflowInfo]:
        wf_id = yield from self.submit_workflow(flow, workflow_id, name)
        found = yield from self.wait_for_workflow(wf_id, timeout)
        return found

    def cancel_workflow(self, workflow_id: str) -> Op[bool]:
        result = result_record(
            workflow_id, JobStatus.CANCELLED, "workflow cancelled", 0.0, self.clock()
        )
        done = yield from self.workflows.cancel(workflow_id, result, int(self.failure_ttl * 1000))
        return done


def _spec(name: str, payload: Any, options: SubmitOptions) -> JobSpec:
    return JobSpec(name=name, payload=payload, **options)


class _Base:
    def __init__(
        self,
        url: str | None,
        *,
        success_ttl: float = DEFAULT_SUCCESS_TTL,
        failure_ttl: float = DEFAULT_FAILURE_TTL,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        max_retries: int = DEFAULT_MAX_RETRIES,
        prefix: str = "bananas",
        ssl_ca_certs: str | None = None,
        clock: Callable[[], float] = time.time,
        eviction_check: CheckMode | str = CheckMode.WARN,
    ) -> None:
        import os

        self.url = url or os.environ.get("REDIS_URL") or DEFAULT_URL
        options = {"ssl_ca_certs": ssl_ca_certs} if ssl_ca_certs else {}
        self.target = parse_url(self.url, **options)
        self.core = ClientCore(
            success_ttl=success_ttl,
            failure_ttl=failure_ttl,
            max_payload_bytes=max_payload_bytes,
            max_retries=max_retries,
            prefix=prefix,
            clock=clock,
            cluster=self.target.is_cluster,
        )
        #: What the first call does about an evicting maxmemory-policy (bananas.eviction).
        self.eviction_check = CheckMode(eviction_check)
        self._policy_checked = self.eviction_check is CheckMode.OFF

    def _judge_policy(self, policy: str | None) -> None:
        self._policy_checked = True
        judge(policy, self.eviction_check, self.target.masked)

    @property
    def broker(self) -> Broker:
        """The queue engine (for the worker runtime and tools): it builds ops for :meth:`run`."""
        return self.core.broker

    @property
    def workflows(self) -> WorkflowStore:
        """The workflow bookkeeping (for the worker runtime and tools): ops for :meth:`run`."""
        return self.core.workflows

    @property
    def is_cluster(self) -> bool:
        """True when this client talks to a Redis Cluster (blocking waits then go key by key)."""
        return self.target.is_cluster


class Client(_Base):
    """The synchronous client.

    ``Client(url)`` takes a Redis URL (else ``REDIS_URL``, else ``redis://localhost:6379``);
    ``success_ttl`` / ``failure_ttl`` are how long results are kept (seconds; the seed's
    ``NewClientWithConfig``). Nothing connects until the first call. Every method raises
    :class:`bananas.BananasConnectionError` when Redis cannot be reached.
    """

    def __init__(self, url: str | None = None, **options: Any) -> None:
        super().__init__(url, **options)
        self.redis: SyncRedis = connect_sync(self.target)
        self._lane = sync_lane(self.redis)

    def run(self, op: Op[T]) -> T:
        """Drive one operation (built by :attr:`broker`) to its result on this client's connection.

        Raises :class:`bananas.BananasConnectionError` when Redis cannot be reached, and
        :class:`bananas.RedisOutOfMemoryError` when a write is refused at ``maxmemory``.
        """
        if not self._policy_checked:
            with contextlib.suppress(redis.RedisError):
                self._judge_policy(read_policy(self.redis))
        try:
            return run_sync(self._lane or self.redis, op, self.target.masked)
        except RedisOutOfMemoryError as exc:
            limit = None
            with contextlib.suppress(redis.RedisError):
                limit = read_maxmemory(self.redis)
            raise with_limit(exc, limit) from None

    def submit(self, name: str, payload: Any = None, **options: Unpack[SubmitOptions]) -> str:
        """Submit a job; returns its id. Same ``job_id`` twice stores and runs one job.

        Raises :class:`bananas.InvalidJobError` (or a subclass) for bad input.
        """
        spec = _spec(name, payload, options)
        return self.run(self.core.submit(spec))

    def submit_many(self, jobs: Iterable[JobSpec | Mapping[str, Any]]) -> list[str]:
        """Submit many jobs with one round trip per batch of 500 per routing key."""
        return self.run(self.core.submit_many(jobs))

    def get_job(self, job_id: str, routing_key: str | None = None) -> Job | None:
        """The job with its current status, or None if there is no such job."""
        return self.run(self.core.get_job(job_id, routing_key))

    def get_result(self, job_id: str, routing_key: str | None = None) -> JobResult | None:
        """The result, or None if the job has not finished (non-blocking)."""
        return self.run(self.core.get_result(job_id, routing_key))

    def wait_for_result(
        self, job_id: str, timeout: float = 30.0, routing_key: str | None = None
    ) -> JobResult:
        """Block until the job finishes; raises :class:`bananas.WaitTimeoutError`."""
        return self.run(self.core.wait_for_result(job_id, timeout, routing_key))

    def watch(
        self, job_id: str, timeout: float = 3600.0, routing_key: str | None = None
    ) -> Iterator[JobEvent]:
        """Yield the job's status, then each progress change as the worker reports it,
        and last the event carrying its result. Pushed: it blocks in Redis, woken by
        ``set_progress`` and by the result. Raises :class:`bananas.JobNotFoundError`, and
        :class:`bananas.WaitTimeoutError` after ``timeout`` s without the result.
        """
        until = time.monotonic() + timeout
        route, key, event = self.run(self.core.watch_open(job_id, routing_key))
        try:
            yield event
            while event.result is None:
                found = self.run(self.core.watch_next(route, job_id, key, event, until))
                if found is None:
                    raise WaitTimeoutError(job_id, timeout)
                event = found
                yield event
        finally:
            self.run(self.core.broker.watch_stop(route, job_id, key))

    def submit_and_wait(
        self,
        name: str,
        payload: Any = None,
        *,
        timeout: float = 30.0,
        job_timeout: float | None = None,
        **options: Unpack[JobOptions],
    ) -> JobResult:
        """Submit a job and block until its result (RPC style).

        ``timeout`` is how long to wait; ``job_timeout`` is the job's own time limit
        (``submit``'s ``timeout``); other options are ``submit``'s. Raises
        :class:`bananas.WaitTimeoutError` when no result arrives in time.
        """
        spec = _spec(name, payload, {**options, "timeout": job_timeout})
        return self.run(self.core.submit_and_wait(spec, timeout))

    def cancel(self, job_id: str, routing_key: str | None = None) -> bool:
        """Cancel a job that has not started. False if it already started or finished.

        Raises :class:`bananas.JobNotFoundError` when there is no such job.
        """
        return self.run(self.core.cancel(job_id, routing_key))

    def run_now(self, job_id: str, routing_key: str | None = None) -> bool:
        """Make a delayed job or a retry in backoff due now; False if it is not scheduled.

        Raises :class:`bananas.JobNotFoundError` when there is no such job.
        """
        return self.run(self.core.run_now(job_id, routing_key))

    def list_jobs(
        self, state: str, routing_key: str = "default", offset: int = 0, count: int = 50
    ) -> tuple[list[Job], int]:
        """A page of the jobs in ``state`` (ready, scheduled, in-flight, dead) and their total."""
        return self.run(self.core.list_jobs(state, routing_key, offset, count))

    def queue_stats(self, routing_key: str = "default", *, due_within: float = 0.0) -> QueueStats:
        """Depth per priority, scheduled, in flight, dead-lettered, oldest ready age, and
        the scheduled jobs due within ``due_within`` seconds (``QueueStats.due``)."""
        return self.run(self.core.queue_stats(routing_key, due_within))

    def all_queue_stats(self) -> list[QueueStats]:
        """:meth:`queue_stats` for every routing key that has held a job."""
        return self.run(self.core.all_stats())

    def pause(
        self, routing_key: str, priorities: Iterable[Priority | str] | None = None
    ) -> list[Priority]:
        """Pause a routing key (or only ``priorities`` of it); returns what is paused now.

        Stored in Redis: no worker fetches a paused queue from its next fetch on; jobs
        already running finish; submits still succeed and wait. Raises
        :class:`bananas.InvalidRoutingKeyError` / :class:`bananas.InvalidJobError`.
        """
        return self.run(self.core.pause(routing_key, priorities, paused=True))

    def resume(
        self, routing_key: str, priorities: Iterable[Priority | str] | None = None
    ) -> list[Priority]:
        """Resume a paused routing key (or only ``priorities``); returns what stays paused.

        Idle workers are woken at once and fetch the waiting backlog.
        """
        return self.run(self.core.pause(routing_key, priorities, paused=False))

    def paused(self) -> dict[str, list[Priority]]:
        """Routing keys with something paused, and their paused priorities."""
        return self.run(self.core.paused())

    def set_limit(
        self,
        key: str,
        rate: str | None = None,
        concurrency: int | None = None,
        burst: int | None = None,
        *,
        routing_key: str = "default",
    ) -> None:
        """Limit a group (``"tenant:42"``) or each group a pattern matches (``"tenant:*"``).

        ``rate`` is ``"100/s"``, ``"6000/m"`` or ``"10/h"`` (jobs started), ``burst`` how
        many may start back to back (default 2), ``concurrency`` how many may run at once;
        all None removes the limit. Enforced by the fetch script of ``routing_key``: a job
        over its limit waits unfetched. Raises :class:`bananas.InvalidJobError`.
        """
        self.run(self.core.set_limit(key, rate, concurrency, burst, routing_key))

    def limits(self, routing_key: str = "default") -> dict[str, str]:
        """The stored limits of a routing key: key -> "interval ms|burst|concurrency"."""
        return self.run(self.core.limits(routing_key))

    def set_retention(
        self,
        routing_key: str = "default",
        *,
        max_dead: int | None = None,
        max_dead_age: float | None = None,
    ) -> None:
        """Bound a routing key's dead-letter queue: at most ``max_dead`` jobs (default
        10,000), none older than ``max_dead_age`` seconds (default 180 days); the oldest go
        first when a job is dead-lettered. None restores a default."""
        self.run(self.core.set_retention(routing_key, max_dead, max_dead_age))

    def dead_letters(
        self, routing_key: str = "default", offset: int = 0, count: int = 50
    ) -> list[DeadJob]:
        """A page of the dead-letter queue, newest first."""
        return self.run(self.core.dead_letters(routing_key, offset, count))

    def requeue_dead(self, job_id: str, routing_key: str = "default") -> bool:
        """Move one dead-lettered job back to its queue; False if it is not dead-lettered."""
        return self.run(self.core.requeue_dead(job_id, routing_key))

    def requeue_all_dead(
        self, routing_key: str = "default", progress: Progress | None = None
    ) -> int:
        """Move every dead-lettered job back; ``progress(n)`` is called after each batch."""
        return self.run(self.core.requeue_all_dead(routing_key, progress))

    def purge_dead(self, routing_key: str = "default", progress: Progress | None = None) -> int:
        """Delete every dead-lettered job; returns how many were deleted."""
        return self.run(self.core.purge_dead(routing_key, progress))

    def delete_dead(self, job_id: str, routing_key: str | None = None) -> bool:
        """Delete one dead-lettered job; False if it is not dead-lettered."""
        return self.run(self.core.delete_dead(job_id, routing_key))

    def register_schedule(self, schedule: Schedule) -> None:
        """Register (or replace) a cron schedule in Redis for the scheduler."""
        self.run(self.core.register_schedule(schedule))

    def unregister_schedule(self, schedule_id: str) -> bool:
        """Remove a schedule; False if it was not registered."""
        return self.run(self.core.unregister_schedule(schedule_id))

    def schedules(self) -> list[Schedule]:
        """Every schedule registered in Redis."""
        return self.run(self.core.schedules())

    def schedule_status(self, schedule_id: str) -> ScheduleStatus | None:
        """What the scheduler last did with a schedule."""
        return self.run(self.core.schedule_status(schedule_id))

    def all_schedules(self) -> list[tuple[Schedule, str, ScheduleStatus | None]]:
        """Every schedule the scheduler fires: (schedule, source, status), where source is
        ``redis`` (registered) or ``code`` (``registry.cron``, published by the cron leader)."""
        return self.run(self.core.all_schedules())

    def forget_route(self, routing_key: str) -> bool:
        """Forget an empty routing key (a typo) in ``all_queue_stats``; False if it holds jobs."""
        return self.run(self.core.forget_route(routing_key))

    def workers(self) -> list[WorkerInfo]:
        """Workers whose heartbeat is fresh."""
        return self.run(self.core.workers())

    def ping(self) -> bool:
        """True when Redis answers; raises :class:`bananas.BananasConnectionError`."""
        return self.run(self.core.ping())

    # -- workflows -----------------------------------------------------------------------

    def submit_workflow(self, flow: Flow, *, workflow_id: str | None = None, name: str = "") -> str:
        """Store a workflow (``bananas.workflows``: task, chain, group, chord) and queue its
        first steps; returns its id. The whole graph is stored or nothing is; an id that
        exists stores and runs nothing new. Raises :class:`InvalidJobError`."""
        return self.run(self.core.submit_workflow(flow, workflow_id, name))

    def submit_workflow_and_wait(
        self, flow: Flow, timeout: float, *, workflow_id: str | None = None, name: str = ""
    ) -> WorkflowInfo:
        """Submit a workflow and wait until it completes, fails or is cancelled; its
        ``result`` holds the workflow's result. Raises :class:`WaitTimeoutError`."""
        return self.run(self.core.submit_workflow_and_wait(flow, timeout, workflow_id, name))

    def wait_for_workflow(self, workflow_id: str, timeout: float) -> WorkflowInfo:
        """Wait (woken by push) until the workflow is no longer running; raises
        :class:`WaitTimeoutError`, or :class:`JobNotFoundError` for an unknown id."""
        return self.run(self.core.wait_for_workflow(workflow_id, timeout))

    def get_workflow(self, workflow_id: str) -> WorkflowInfo | None:
        """Every node's state, result or error; None for an unknown or expired workflow."""
        return self.run(self.core.get_workflow(workflow_id))

    def cancel_workflow(self, workflow_id: str) -> bool:
        """Cancel a running (or failed) workflow: no node that has not started will; a
        running node finishes. False when it was not running (or is unknown)."""
        return self.run(self.core.cancel_workflow(workflow_id))

    def close(self) -> None:
        """Close the connections."""
        if self._lane is not None:
            self._lane.close()
        self.redis.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the seed's names ------------------------------------------------------------------

    def submit_job(
        self, name: str, payload: Any, priority: Priority | str = "normal", description: str = ""
    ) -> str:
        """Seed ``SubmitJob``: submit to the default routing key."""
        return self.submit(name, payload, priority=priority, description=description)

    def submit_job_with_route(
        self,
        name: str,
        payload: Any,
        priority: Priority | str,
        routing_key: str,
        description: str = "",
    ) -> str:
        """Seed ``SubmitJobWithRoute``."""
        return self.submit(
            name, payload, priority=priority, routing_key=routing_key, description=description
        )

    def submit_job_scheduled(
        self,
        name: str,
        payload: Any,
        priority: Priority | str,
        scheduled_for: datetime,
        description: str = "",
    ) -> str:
        """Seed ``SubmitJobScheduled``."""
        return self.submit(
            name, payload, priority=priority, scheduled_for=scheduled_for, description=description
        )


class AsyncClient(_Base):
    """The asyncio client: the same methods as :class:`Client`, as coroutines."""

    def __init__(self, url: str | None = None, **options: Any) -> None:
        super().__init__(url, **options)
        self.redis: AsyncRedis = connect_async(self.target)
        self._lanes = lane_pool(self.redis)
        #: Result waiters share a few connections (single server; None: one key at a time).
        self._waits = (
            WaitHub(
                lambda: fast_lane(self.redis),
                self.run,
                self.target.masked,
                self.broker.keys.waithub,
            )
            if self._lanes is not None
            else None
        )

    async def run(self, op: Op[T], *, lane: FastLane | None = None) -> T:
        """Drive one operation (built by :attr:`broker`) to its result.

        It runs on ``lane`` when given (see :meth:`dedicated_lane`), else on the
        client's shared connections. Raises :class:`bananas.BananasConnectionError`
        when Redis cannot be reached.
        """
        if not self._policy_checked:
            with contextlib.suppress(redis.RedisError):
                self._judge_policy(await aread_policy(self.redis))
        try:
            if lane is not None:
                return await run_async(lane, op, self.target.masked)
            return await run_async(self._lanes or self.redis, op, self.target.masked)
        except RedisOutOfMemoryError as exc:
            limit = None
            with contextlib.suppress(redis.RedisError):
                limit = await aread_maxmemory(self.redis)
            raise with_limit(exc, limit) from None

    def dedicated_lane(self) -> FastLane | None:
        """A connection of its own for one task's hot path (a worker's fetcher or acker).

        Pass it to :meth:`run` as ``lane``; the caller closes it. None when lanes do not
        apply (Redis Cluster, Sentinel, or hiredis missing): use :meth:`run` without one.
        """
        return fast_lane(self.redis)

    async def submit(self, name: str, payload: Any = None, **options: Unpack[SubmitOptions]) -> str:
        """See :meth:`Client.submit`."""
        spec = _spec(name, payload, options)
        return await self.run(self.core.submit(spec))

    async def submit_many(self, jobs: Iterable[JobSpec | Mapping[str, Any]]) -> list[str]:
        """See :meth:`Client.submit_many`."""
        return await self.run(self.core.submit_many(jobs))

    async def get_job(self, job_id: str, routing_key: str | None = None) -> Job | None:
        """See :meth:`Client.get_job`."""
        return await self.run(self.core.get_job(job_id, routing_key))

    async def get_result(self, job_id: str, routing_key: str | None = None) -> JobResult | None:
        """See :meth:`Client.get_result`."""
        return await self.run(self.core.get_result(job_id, routing_key))

    async def wait_for_result(
        self, job_id: str, timeout: float = 30.0, routing_key: str | None = None
    ) -> JobResult:
        """See :meth:`Client.wait_for_result`."""
        if self._waits is None:
            return await self.run(self.core.wait_for_result(job_id, timeout, routing_key))
        route = await self.run(self.core._route_of(job_id, routing_key))
        if route is None:
            raise JobNotFoundError(job_id)
        return await self._wait_shared(route, job_id, timeout)

    async def submit_and_wait(
        self,
        name: str,
        payload: Any = None,
        *,
        timeout: float = 30.0,
        job_timeout: float | None = None,
        **options: Unpack[JobOptions],
    ) -> JobResult:
        """See :meth:`Client.submit_and_wait`."""
        spec = _spec(name, payload, {**options, "timeout": job_timeout})
        if self._waits is None:
            return await self.run(self.core.submit_and_wait(spec, timeout))
        job_id = await self.run(self.core.submit(spec))
        return await self._wait_shared(spec.routing_key, job_id, timeout)

    async def _wait_shared(self, routing_key: str, job_id: str, timeout: float) -> JobResult:
        """Wait for a result through the shared wait hubs: the stored result is read
        first (so one written before the wait is never missed), then the job's notify
        list is waited on with every other waiter of this client."""
        assert self._waits is not None
        deadline = time.monotonic() + timeout
        notify = self.broker.route(routing_key).notify(job_id)
        while True:
            found = await self.run(self.broker.result(routing_key, job_id))
            if found is not None:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeoutError(job_id, timeout)
            await self._waits.wait(notify, remaining)

    async def watch(
        self, job_id: str, timeout: float = 3600.0, routing_key: str | None = None
    ) -> AsyncIterator[JobEvent]:
        """See :meth:`Client.watch` (an async iterator: ``async for event in ...``)."""
        until = time.monotonic() + timeout
        route, key, event = await self.run(self.core.watch_open(job_id, routing_key))
        try:
            yield event
            while event.result is None:
                found = await self.run(self.core.watch_next(route, job_id, key, event, until))
                if found is None:
                    raise WaitTimeoutError(job_id, timeout)
                event = found
                yield event
        finally:
            await self.run(self.core.broker.watch_stop(route, job_id, key))

    async def cancel(self, job_id: str, routing_key: str | None = None) -> bool:
        """See :meth:`Client.cancel`."""
        return await self.run(self.core.cancel(job_id, routing_key))

    async def run_now(self, job_id: str, routing_key: str | None = None) -> bool:
        """See :meth:`Client.run_now`."""
        return await self.run(self.core.run_now(job_id, routing_key))

    async def list_jobs(
        self, state: str, routing_key: str = "default", offset: int = 0, count: int = 50
    ) -> tuple[list[Job], int]:
        """See :meth:`Client.list_jobs`."""
        return await self.run(self.core.list_jobs(state, routing_key, offset, count))

    async def queue_stats(
        self, routing_key: str = "default", *, due_within: float = 0.0
    ) -> QueueStats:
        """See :meth:`Client.queue_stats`."""
        return await self.run(self.core.queue_stats(routing_key, due_within))

    async def all_queue_stats(self) -> list[QueueStats]:
        """See :meth:`Client.all_queue_stats`."""
        return await self.run(self.core.all_stats())

    async def pause(
        self, routing_key: str, priorities: Iterable[Priority | str] | None = None
    ) -> list[Priority]:
        """See :meth:`Client.pause`."""
        return await self.run(self.core.pause(routing_key, priorities, paused=True))

    async def resume(
        self, routing_key: str, priorities: Iterable[Priority | str] | None = None
    ) -> list[Priority]:
        """See :meth:`Client.resume`."""
        return await self.run(self.core.pause(routing_key, priorities, paused=False))

    async def paused(self) -> dict[str, list[Priority]]:
        """See :meth:`Client.paused`."""
        return await self.run(self.core.paused())

    async def set_limit(
        self,
        key: str,
        rate: str | None = None,
        concurrency: int | None = None,
        burst: int | None = None,
        *,
        routing_key: str = "default",
    ) -> None:
        """See :meth:`Client.set_limit`."""
        await self.run(self.core.set_limit(key, rate, concurrency, burst, routing_key))

    async def limits(self, routing_key: str = "default") -> dict[str, str]:
        """See :meth:`Client.limits`."""
        return await self.run(self.core.limits(routing_key))

    async def set_retention(
        self,
        routing_key: str = "default",
        *,
        max_dead: int | None = None,
        max_dead_age: float | None = None,
    ) -> None:
        """See :meth:`Client.set_retention`."""
        await self.run(self.core.set_retention(routing_key, max_dead, max_dead_age))

    async def dead_letters(
        self, routing_key: str = "default", offset: int = 0, count: int = 50
    ) -> list[DeadJob]:
        """See :meth:`Client.dead_letters`."""
        return await self.run(self.core.dead_letters(routing_key, offset, count))

    async def requeue_dead(self, job_id: str, routing_key: str = "default") -> bool:
        """See :meth:`Client.requeue_dead`."""
        return await self.run(self.core.requeue_dead(job_id, routing_key))

    async def requeue_all_dead(
        self, routing_key: str = "default", progress: Progress | None = None
    ) -> int:
        """See :meth:`Client.requeue_all_dead`."""
        return await self.run(self.core.requeue_all_dead(routing_key, progress))

    async def purge_dead(
        self, routing_key: str = "default", progress: Progress | None = None
    ) -> int:
        """See :meth:`Client.purge_dead`."""
        return await self.run(self.core.purge_dead(routing_key, progress))

    async def delete_dead(self, job_id: str, routing_key: str | None = None) -> bool:
        """See :meth:`Client.delete_dead`."""
        return await self.run(self.core.delete_dead(job_id, routing_key))

    async def register_schedule(self, schedule: Schedule) -> None:
        """See :meth:`Client.register_schedule`."""
        await self.run(self.core.register_schedule(schedule))

    async def unregister_schedule(self, schedule_id: str) -> bool:
        """See :meth:`Client.unregister_schedule`."""
        return await self.run(self.core.unregister_schedule(schedule_id))

    async def schedules(self) -> list[Schedule]:
        """See :meth:`Client.schedules`."""
        return await self.run(self.core.schedules())

    async def schedule_status(self, schedule_id: str) -> ScheduleStatus | None:
        """See :meth:`Client.schedule_status`."""
        return await self.run(self.core.schedule_status(schedule_id))

    async def all_schedules(self) -> list[tuple[Schedule, str, ScheduleStatus | None]]:
        """See :meth:`Client.all_schedules`."""
        return await self.run(self.core.all_schedules())

    async def forget_route(self, routing_key: str) -> bool:
        """See :meth:`Client.forget_route`."""
        return await self.run(self.core.forget_route(routing_key))

    async def workers(self) -> list[WorkerInfo]:
        """See :meth:`Client.workers`."""
        return await self.run(self.core.workers())

    async def ping(self) -> bool:
        """See :meth:`Client.ping`."""
        return await self.run(self.core.ping())

    # -- workflows -----------------------------------------------------------------------

    async def submit_workflow(
        self, flow: Flow, *, workflow_id: str | None = None, name: str = ""
    ) -> str:
        """See :meth:`Client.submit_workflow`."""
        return await self.run(self.core.submit_workflow(flow, workflow_id, name))

    async def submit_workflow_and_wait(
        self, flow: Flow, timeout: float, *, workflow_id: str | None = None, name: str = ""
    ) -> WorkflowInfo:
        """See :meth:`Client.submit_workflow_and_wait`."""
        return await self.run(self.core.submit_workflow_and_wait(flow, timeout, workflow_id, name))

    async def wait_for_workflow(self, workflow_id: str, timeout: float) -> WorkflowInfo:
        """See :meth:`Client.wait_for_workflow`."""
        return await self.run(self.core.wait_for_workflow(workflow_id, timeout))

    async def get_workflow(self, workflow_id: str) -> WorkflowInfo | None:
        """See :meth:`Client.get_workflow`."""
        return await self.run(self.core.get_workflow(workflow_id))

    async def cancel_workflow(self, workflow_id: str) -> bool:
        """See :meth:`Client.cancel_workflow`."""
        return await self.run(self.core.cancel_workflow(workflow_id))

    async def close(self) -> None:
        """Close the connections."""
        if self._waits is not None:
            await self._waits.close()
        if self._lanes is not None:
            await self._lanes.close()
        await self.redis.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def submit_job(
        self, name: str, payload: Any, priority: Priority | str = "normal", description: str = ""
    ) -> str:
        """Seed ``SubmitJob``."""
        return await self.submit(name, payload, priority=priority, description=description)

    async def submit_job_with_route(
        self,
        name: str,
        payload: Any,
        priority: Priority | str,
        routing_key: str,
        description: str = "",
    ) -> str:
        """Seed ``SubmitJobWithRoute``."""
        return await self.submit(
            name, payload, priority=priority, routing_key=routing_key, description=description
        )

    async def submit_job_scheduled(
        self,
        name: str,
        payload: Any,
        priority: Priority | str,
        scheduled_for: datetime,
        description: str = "",
    ) -> str:
        """Seed ``SubmitJobScheduled``."""
        return await self.submit(
            name, payload, priority=priority, scheduled_for=scheduled_for, description=description
        )

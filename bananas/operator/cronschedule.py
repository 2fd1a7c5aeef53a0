"""CronSchedule reconciliation, as pure functions.

A CronSchedule becomes a :class:`bananas.models.Schedule` registered in Redis
under the id ``<namespace>.<name>`` (a namespace has no dots, so the id is
unambiguous, and two namespaces sharing a Redis never collide). The scheduler
fires it; the operator only registers, unregisters and reports.

What the API server's schema cannot check is checked here: whether the time
zone exists (``zoneinfo``) and whether the cron expression really parses
(``croniter``: "61 * * * *" has five fields but no meaning). A schedule that
fails either is not registered and says why in its conditions.

:func:`render_status` turns what the scheduler wrote in Redis
(:class:`ScheduleStatus`) and the state of the last fired job into the
CronSchedule's status, and lists the Events that the change deserves: one per
fire, one per skipped slot, one per new fire error. Comparing against the
previous status is what makes an Event mean "this happened since last time".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from bananas.models import Job, JobResult, JobStatus, Schedule, ScheduleStatus
from bananas.operator.conditions import FALSE, TRUE, Condition
from bananas.operator.health import Problem, Rollout, summarize
from bananas.operator.reasons import ConditionType, Reason
from bananas.operator.specs import CronScheduleSpec
from bananas.operator.timefmt import format_time, parse_time

#: Slots missed in one go beyond which the Event is TooManyMissed (as CronJob's 100).
TOO_MANY_MISSED = 100

_LIVE = {JobStatus.PENDING, JobStatus.SCHEDULED, JobStatus.PROCESSING}

#: The macros a CronSchedule accepts (as a CronJob does), as the 5 fields the SDK takes.
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def cron_fields(schedule: str) -> str:
    """The schedule as 5 space-separated fields, macros expanded (``@daily`` -> ``0 0 * * *``)."""
    expr = schedule.strip()
    return MACROS.get(expr.lower(), " ".join(expr.split()))


def schedule_id(namespace: str, name: str) -> str:
    """The id a CronSchedule is registered under in Redis."""
    return f"{namespace}.{name}"


def check_spec(spec: CronScheduleSpec) -> Problem | None:
    """The first problem only the operator can detect, or None when the spec is good."""
    try:
        ZoneInfo(spec.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return Problem(Reason.INVALID_TIME_ZONE, f"unknown time zone {spec.time_zone!r}")
    expr = cron_fields(spec.schedule)
    if len(expr.split()) != 5 or not croniter.is_valid(expr):
        return Problem(
            Reason.INVALID_SCHEDULE,
            f"schedule {spec.schedule!r} is not a valid 5-field cron expression",
        )
    return None


def to_schedule(namespace: str, name: str, spec: CronScheduleSpec) -> Schedule:
    """The Schedule to register for a CronSchedule (``suspend`` maps to ``enabled``)."""
    return Schedule(
        id=schedule_id(namespace, name),
        cron=cron_fields(spec.schedule),
        job=spec.job,
        payload=spec.payload,
        priority=spec.priority,
        routing_key=spec.routing_key,
        timezone=spec.time_zone,
        enabled=not spec.suspend,
        description=spec.description or f"CronSchedule {namespace}/{name}",
        concurrency_policy=spec.concurrency_policy,
        starting_deadline_seconds=(
            float(spec.starting_deadline_seconds)
            if spec.starting_deadline_seconds is not None
            else None
        ),
        max_retries=spec.max_retries,
    )


def next_fire(spec: CronScheduleSpec, now: datetime) -> datetime | None:
    """The next slot after ``now`` in the schedule's time zone; None when suspended or invalid."""
    if spec.suspend or check_spec(spec) is not None:
        return None
    start = now.astimezone(ZoneInfo(spec.time_zone))
    upcoming = croniter(cron_fields(spec.schedule), start).get_next(datetime)
    return upcoming if isinstance(upcoming, datetime) else None


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post about the CronSchedule."""

    type: str  # "Normal" or "Warning"
    reason: str
    message: str


@dataclass(frozen=True)
class CronObservation:
    """What the operator read from Redis about one schedule."""

    status: ScheduleStatus | None
    #: The job last fired, if it still exists.
    last_job: Job | None = None
    #: Its result, if it finished.
    last_result: JobResult | None = None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def upcoming_fire(
    spec: CronScheduleSpec, state: ScheduleStatus | None, now: datetime
) -> datetime | None:
    """The slot the scheduler will fire next: its own record, when that was computed from
    this spec's expression and time zone and is still ahead; else the spec's next slot."""
    upcoming = next_fire(spec, now)
    if upcoming is None or state is None or state.next_schedule_time is None:
        return upcoming
    timing = Schedule(id="-", cron=cron_fields(spec.schedule), job=spec.job,
                      timezone=spec.time_zone).timing()  # fmt: skip
    if state.timing == timing and state.next_schedule_time > now:
        return state.next_schedule_time
    return upcoming


def _fields(spec: CronScheduleSpec, seen: CronObservation, now: datetime) -> dict[str, Any]:
    st = seen.status
    upcoming = upcoming_fire(spec, st, now)
    last_success = st.last_successful_time if st else None
    if seen.last_result is not None and seen.last_result.is_success():
        done = seen.last_result.completed_at
        last_success = done if last_success is None else max(last_success, done)
    live = seen.last_job is not None and seen.last_job.status in _LIVE
    return {
        "lastScheduleTime": _time(st.last_schedule_time if st else None),
        "lastSuccessfulTime": _time(last_success),
        "nextScheduleTime": _time(upcoming),
        "lastJobId": (st.last_job_id if st else "") or None,
        "active": [seen.last_job.id] if live and seen.last_job else [],
        "runCount": st.run_count if st else 0,
        "skippedCount": st.skipped_count if st else 0,
        "lastError": (st.last_error if st else "") or None,
    }


def _time(moment: datetime | None) -> str | None:
    return format_time(moment) if moment is not None else None


def _events(
    spec: CronScheduleSpec, previous: Mapping[str, Any], fields: Mapping[str, Any]
) -> list[Event]:
    events: list[Event] = []
    last = fields["lastScheduleTime"]
    if last is not None and parse_time(previous.get("lastScheduleTime")) != parse_time(last):
        events.append(
            Event("Normal", Reason.FIRED, f"fired the slot of {last} as job {fields['lastJobId']}")
        )
    skipped = fields["skippedCount"] - _int(previous.get("skippedCount"))
    if spec.suspend:
        pass  # slots pass unfired while suspended, as asked: no Warning per slot
    elif skipped >= TOO_MANY_MISSED and "skippedCount" in previous:
        events.append(
            Event(
                "Warning",
                Reason.TOO_MANY_MISSED,
                f"missed {skipped} slots (at least {TOO_MANY_MISSED}): is the scheduler"
                " running? Only the latest missed slot is fired, within"
                " startingDeadlineSeconds when set",
            )
        )
    elif skipped > 0 and "skippedCount" in previous:
        events.append(
            Event(
                "Warning",
                Reason.MISSED_SCHEDULE,
                f"skipped {skipped} slot(s) (missed or not allowed)",
            )
        )
    error = fields["lastError"]
    if error and error != previous.get("lastError"):
        events.append(Event("Warning", Reason.FIRE_FAILED, str(error)))
    return events


def render_status(
    spec: CronScheduleSpec, seen: CronObservation, previous: Mapping[str, Any], now: datetime
) -> tuple[dict[str, Any], list[Event]]:
    """The status fields from Redis, and the Events since ``previous`` (the current status).

    Fields that have no value are returned as None, so a merge patch clears them.
    """
    fields = _fields(spec, seen, now)
    return fields, _events(spec, previous if isinstance(previous, Mapping) else {}, fields)


def registered_conditions(spec: CronScheduleSpec) -> list[Condition]:
    """Conditions of a schedule that is registered in its Redis."""
    state = "suspended" if spec.suspend else "registered"
    return [
        Condition(ConditionType.REGISTERED, TRUE, Reason.REGISTERED, f"schedule {state} in Redis"),
        Condition(ConditionType.REDIS_REACHABLE, TRUE, Reason.CONNECTED, "Redis answered"),
    ]


def problem_conditions(problem: Problem) -> list[Condition]:
    """Conditions of a schedule the operator refused to register."""
    return [Condition(ConditionType.REGISTERED, FALSE, problem.reason, problem.message)]


def schedule_health(
    spec: CronScheduleSpec | None,
    *,
    refusal: Problem | None = None,
    redis: Problem | None = None,
    scheduler_failed: Problem | None = None,
    scheduler: Mapping[str, Any] | None = None,
) -> list[Condition]:
    """Ready, Reconciling and Stalled of a CronSchedule (see :mod:`~bananas.operator.health`).

    Ready means: this generation is registered in Redis and the namespace's
    scheduler Deployment (``scheduler``, as stored) has a pod available to fire
    it. A refused spec and a scheduler the operator could not apply are Stalled;
    a Redis that did not answer (``redis``) and a scheduler still starting are
    Reconciling, since both clear without anybody's help.
    """
    stalled = refusal or scheduler_failed
    reconciling = redis
    if stalled is None and scheduler is not None:
        rollout = Rollout.of(scheduler)
        if rollout.deadline_exceeded is not None:
            stalled = Problem(Reason.PROGRESS_DEADLINE_EXCEEDED, rollout.deadline_exceeded)
        elif reconciling is None and rollout.available < 1:
            reconciling = Problem(Reason.SCHEDULER_UNAVAILABLE, "no scheduler pod is available")
    elif stalled is None and reconciling is None:
        reconciling = Problem(Reason.SCHEDULER_UNAVAILABLE, "the scheduler Deployment is missing")
    suspended = spec is not None and spec.suspend
    ready = Problem(
        Reason.SUSPENDED if suspended else Reason.SCHEDULED,
        "schedule suspended" if suspended else "schedule registered and served",
    )
    return summarize(stalled=stalled, reconciling=reconciling, ready=ready)

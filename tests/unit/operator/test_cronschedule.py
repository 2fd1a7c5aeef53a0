"""CronSchedule -> Schedule, checks only the operator can make, and status from Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bananas.models import (
    ConcurrencyPolicy,
    Job,
    JobResult,
    JobStatus,
    Priority,
    Schedule,
    ScheduleStatus,
)
from bananas.operator.cronschedule import (
    CronObservation,
    check_spec,
    cron_fields,
    next_fire,
    render_status,
    schedule_id,
    to_schedule,
    upcoming_fire,
)
from bananas.operator.specs import parse_cronschedule
from bananas.validation import validate_schedule

NOW = datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC)


def cron(**fields: Any) -> Any:
    return parse_cronschedule({"schedule": "0 3 * * *", "job": "cleanup", **fields})


def test_schedule_id_is_namespaced() -> None:
    assert schedule_id("team-a", "nightly") == "team-a.nightly"


def test_to_schedule_maps_every_field() -> None:
    spec = cron(
        timeZone="Europe/Berlin",
        payload={"days": 30},
        priority="low",
        routingKey="maintenance",
        suspend=True,
        concurrencyPolicy="Forbid",
        startingDeadlineSeconds=600,
        maxRetries=5,
        description="purge",
    )
    schedule = to_schedule("ops", "nightly", spec)
    assert schedule.id == "ops.nightly"
    assert schedule.cron == "0 3 * * *"
    assert schedule.job == "cleanup"
    assert schedule.payload == {"days": 30}
    assert schedule.priority is Priority.LOW
    assert schedule.routing_key == "maintenance"
    assert schedule.timezone == "Europe/Berlin"
    assert schedule.enabled is False
    assert schedule.concurrency_policy is ConcurrencyPolicy.FORBID
    assert schedule.starting_deadline_seconds == 600.0
    assert schedule.max_retries == 5
    assert schedule.description == "purge"


def test_defaults() -> None:
    schedule = to_schedule("ops", "nightly", cron())
    assert (schedule.timezone, schedule.enabled, schedule.priority) == (
        "UTC",
        True,
        Priority.NORMAL,
    )
    assert schedule.starting_deadline_seconds is None
    assert schedule.concurrency_policy is ConcurrencyPolicy.ALLOW
    assert schedule.description == "CronSchedule ops/nightly"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({}, None),
        ({"schedule": "@hourly"}, None),
        ({"schedule": "*/5 9-17 * * mon-fri"}, None),
        ({"timeZone": "America/New_York"}, None),
        ({"timeZone": "Mars/Olympus_Mons"}, "InvalidTimeZone"),
        ({"timeZone": "../../etc/passwd"}, "InvalidTimeZone"),
        ({"schedule": "61 * * * *"}, "InvalidSchedule"),
        ({"schedule": "* * * * * *"}, "InvalidSchedule"),  # six fields (seconds) refused
        ({"schedule": "* * *"}, "InvalidSchedule"),
    ],
)
def test_check_spec(fields: dict[str, Any], reason: str | None) -> None:
    problem = check_spec(cron(**fields))
    assert (problem.reason if problem else None) == reason


def test_next_fire_in_time_zone() -> None:
    upcoming = next_fire(cron(timeZone="Europe/Berlin"), NOW)
    assert upcoming is not None
    assert upcoming.astimezone(UTC) == datetime(2024, 5, 2, 1, 0, tzinfo=UTC)  # 03:00 CEST


def test_next_fire_none_when_suspended_or_invalid() -> None:
    assert next_fire(cron(suspend=True), NOW) is None
    assert next_fire(cron(timeZone="Nowhere/Land"), NOW) is None


def _job(status: JobStatus) -> Job:
    return Job(id="job-1", name="cleanup", status=status)


def test_status_before_any_fire() -> None:
    fields, events = render_status(cron(), CronObservation(status=None), {}, NOW)
    assert fields["lastScheduleTime"] is None
    assert fields["nextScheduleTime"] == "2024-05-02T03:00:00Z"
    assert fields["active"] == [] and fields["runCount"] == 0
    assert events == []


def test_status_after_a_fire_posts_one_event() -> None:
    fired = datetime(2024, 5, 1, 3, 0, tzinfo=UTC)
    state = ScheduleStatus(
        schedule_id="ops.nightly", last_schedule_time=fired, last_job_id="job-1", run_count=1
    )
    seen = CronObservation(status=state, last_job=_job(JobStatus.PROCESSING))
    fields, events = render_status(cron(), seen, {}, NOW)
    assert fields["lastScheduleTime"] == "2024-05-01T03:00:00Z"
    assert fields["lastJobId"] == "job-1"
    assert fields["active"] == ["job-1"]
    assert [e.reason for e in events] == ["Fired"]
    # The same observation again: nothing new happened, so no Event.
    _, again = render_status(cron(), seen, fields, NOW)
    assert again == []


def test_success_time_from_the_result() -> None:
    fired = datetime(2024, 5, 1, 3, 0, tzinfo=UTC)
    done = fired + timedelta(minutes=2)
    state = ScheduleStatus(
        schedule_id="ops.nightly", last_schedule_time=fired, last_job_id="job-1", run_count=1
    )
    seen = CronObservation(
        status=state,
        last_job=_job(JobStatus.COMPLETED),
        last_result=JobResult(job_id="job-1", status=JobStatus.COMPLETED, completed_at=done),
    )
    fields, _ = render_status(cron(), seen, {}, NOW)
    assert fields["lastSuccessfulTime"] == "2024-05-01T03:02:00Z"
    assert fields["active"] == []


def test_skips_and_errors_become_warnings() -> None:
    state = ScheduleStatus(schedule_id="x", skipped_count=3, last_error="redis said no")
    previous = {"skippedCount": 1, "lastError": None}
    _, events = render_status(cron(), CronObservation(status=state), previous, NOW)
    assert [(e.type, e.reason) for e in events] == [
        ("Warning", "MissedSchedule"),
        ("Warning", "FireFailed"),
    ]
    assert "skipped 2 slot(s)" in events[0].message


def test_hand_edited_previous_status_is_survivable() -> None:
    previous = {"lastScheduleTime": "garbage", "skippedCount": "many", "lastError": 7}
    state = ScheduleStatus(schedule_id="x", skipped_count=1)
    fields, events = render_status(cron(), CronObservation(status=state), previous, NOW)
    assert fields["skippedCount"] == 1
    assert [e.reason for e in events] == ["MissedSchedule"]


@pytest.mark.parametrize(
    ("schedule", "fields"),
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("  */5   9-17 * * 1-5 ", "*/5 9-17 * * 1-5"),
    ],
)
def test_macros_become_five_fields(schedule: str, fields: str) -> None:
    """The SDK (and its scheduler) takes 5 fields only; macros are expanded on registration."""
    registered = to_schedule("ops", "x", cron(schedule=schedule))
    assert registered.cron == fields
    validate_schedule(registered)  # what AsyncClient.register_schedule checks


def test_next_schedule_time_is_what_the_scheduler_will_fire() -> None:
    now = datetime(2026, 1, 1, 10, 1, tzinfo=UTC)
    every5 = parse_cronschedule({"schedule": "*/5 * * * *", "job": "j"})
    daily = parse_cronschedule({"schedule": "0 3 * * *", "job": "j"})
    timing = Schedule(id="x", cron=cron_fields(daily.schedule), job="j").timing()
    stale = ScheduleStatus(
        schedule_id="x", next_schedule_time=datetime(2026, 1, 2, 3, tzinfo=UTC), timing=timing
    )
    # the scheduler's record was computed from the daily expression: after the edit to */5,
    # the scheduler starts afresh, and so does the reported time
    assert upcoming_fire(every5, stale, now) == datetime(2026, 1, 1, 10, 5, tzinfo=UTC)
    assert upcoming_fire(daily, stale, now) == datetime(2026, 1, 2, 3, tzinfo=UTC)
    suspended = parse_cronschedule({"schedule": "0 3 * * *", "job": "j", "suspend": True})
    assert upcoming_fire(suspended, stale, now) is None


def test_no_warning_per_slot_while_suspended_and_one_for_a_long_outage() -> None:
    suspended = parse_cronschedule({"schedule": "* * * * *", "job": "j", "suspend": True})
    running = parse_cronschedule({"schedule": "* * * * *", "job": "j"})
    now = datetime(2026, 1, 1, tzinfo=UTC)
    previous = {"skippedCount": 10}
    seen = CronObservation(status=ScheduleStatus(schedule_id="x", skipped_count=11))
    assert render_status(suspended, seen, previous, now)[1] == []
    _, events = render_status(running, seen, previous, now)
    assert [e.reason for e in events] == ["MissedSchedule"]
    outage = CronObservation(status=ScheduleStatus(schedule_id="x", skipped_count=510))
    _, events = render_status(running, outage, previous, now)
    assert [(e.type, e.reason) for e in events] == [("Warning", "TooManyMissed")]
    assert "missed 500 slots" in events[0].message

"""Cron arithmetic: when a schedule is due, what a fire is called, what was missed.

Pure functions over (schedule, status, now), so the rules are unit-tested without
Redis or sleeping. Expressions are 5-field cron (croniter); each schedule has its
own IANA time zone (zoneinfo) and slots are computed in local time, so
``0 9 * * *`` in ``America/New_York`` fires at 09:00 local on both sides of a DST
change. A local time that does not exist (02:30 on the spring-forward day) is
fired once at the first instant after the gap; one that happens twice (01:30 on the
fall-back day) is fired once.

An edit of the expression or the time zone applies at once: the status records
which (:meth:`bananas.models.Schedule.timing`) its next slot was computed from,
and a different one starts afresh from the next slot of the new definition
(nothing before the edit is owed). Suspending and resuming are read at every
tick and need no such reset.

The missed-run policy follows Kubernetes CronJob: after downtime only the most
recent missed slot is fired, and only if it is still within
``starting_deadline_seconds`` (when set); older missed slots are counted as skipped.
A fire's job id is derived from (schedule id, slot), so two schedulers — or one
that fired just before it failed over — can never both submit one slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import croniter

from bananas.models import Schedule, ScheduleStatus
from bananas.validation import validate_schedule, zone

#: Most missed slots counted one by one after downtime (beyond that: "at least").
MAX_COUNTED_MISSES = 1000


def check_schedule(schedule: Schedule) -> None:
    """Raise ValueError (``InvalidJobError``) when the expression, zone or route is invalid."""
    validate_schedule(schedule)


def next_slot(schedule: Schedule, after: datetime) -> datetime:
    """The first slot strictly after ``after`` (UTC).

    A wall-clock time that happens twice (the hour repeated when DST ends) fires at
    its first occurrence only.
    """
    tz = zone(schedule.timezone)
    it = croniter(schedule.cron, after.astimezone(tz))
    while True:
        found: datetime = it.get_next(datetime)
        local = found.astimezone(tz)
        if local.replace(fold=0).utcoffset() == local.utcoffset():
            return found.astimezone(UTC)


def latest_slot(schedule: Schedule, now: datetime) -> datetime:
    """The last slot at or before ``now`` (UTC)."""
    local = now.astimezone(zone(schedule.timezone))
    it = croniter(schedule.cron, local + timedelta(microseconds=1))
    found: datetime = it.get_prev(datetime)
    return found.astimezone(UTC)


def fire_id(schedule_id: str, slot: datetime) -> str:
    """The job id of the fire of ``slot``: the same for every scheduler."""
    return f"cron:{schedule_id}:{int(slot.timestamp())}"


@dataclass(frozen=True)
class Decision:
    """What to do with a schedule now: fire ``slot`` or not, and how many were skipped."""

    slot: datetime | None
    skipped: int
    next_time: datetime
    reason: str = ""


def decide(schedule: Schedule, status: ScheduleStatus | None, now: datetime) -> Decision:
    """Which slot (if any) to fire now, under the missed-run policy."""
    if status is None or status.next_schedule_time is None:
        # First sight: nothing before now is owed; the first fire is the next slot.
        return Decision(None, 0, next_slot(schedule, now), "first sight")
    if status.timing and status.timing != schedule.timing():
        # The expression or time zone was edited: the stored slot belongs to the old one.
        return Decision(None, 0, next_slot(schedule, now), "schedule changed")
    due_from = status.next_schedule_time
    if now < due_from:
        return Decision(None, 0, due_from)
    latest = latest_slot(schedule, now)
    following = next_slot(schedule, now)
    missed = _count_between(schedule, due_from, latest)
    if not schedule.enabled:
        return Decision(None, missed + 1, following, "suspended")
    deadline = schedule.starting_deadline_seconds
    if deadline is not None and (now - latest).total_seconds() > deadline:
        return Decision(None, missed + 1, following, "missed its starting deadline")
    return Decision(latest, missed, following)


def _count_between(schedule: Schedule, start: datetime, latest: datetime) -> int:
    """Slots in [start, latest) — the ones skipped when only ``latest`` fires."""
    count = 0
    slot = start
    while slot < latest and count < MAX_COUNTED_MISSES:
        count += 1
        slot = next_slot(schedule, slot)
    return count

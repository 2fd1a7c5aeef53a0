"""Cron rules as pure functions: slots, time zones across DST, missed runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bananas.models import Schedule, ScheduleStatus
from bananas.worker_runtime.cron import check_schedule, decide, fire_id, latest_slot, next_slot


def sched(**kw: object) -> Schedule:
    return Schedule(**{"id": "s", "cron": "*/5 * * * *", "job": "j", **kw})  # type: ignore[arg-type]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_daily_nine_am_new_york_across_spring_forward() -> None:
    s = sched(cron="0 9 * * *", timezone="America/New_York")
    before = next_slot(s, at("2026-03-07T15:00:00"))
    after = next_slot(s, before)
    assert before == at("2026-03-08T13:00:00")  # 09:00 EDT (DST began that night)
    assert next_slot(s, at("2026-03-06T15:00:00")) == at("2026-03-07T14:00:00")  # 09:00 EST
    assert after == at("2026-03-09T13:00:00")


def test_fall_back_fires_an_ambiguous_time_once() -> None:
    s = sched(cron="30 1 * * *", timezone="America/New_York")
    first = next_slot(s, at("2026-11-01T04:00:00"))
    second = next_slot(s, first)
    assert second - first >= timedelta(hours=23), (first, second)


def test_nonexistent_local_time_fires_once() -> None:
    s = sched(cron="30 2 * * *", timezone="America/New_York")
    slot = next_slot(s, at("2026-03-08T05:00:00"))
    assert slot.date() == datetime(2026, 3, 8).date() or slot.date() == datetime(2026, 3, 9).date()
    assert next_slot(s, slot) - slot >= timedelta(hours=22)


def test_latest_slot_includes_now() -> None:
    s = sched()
    assert latest_slot(s, at("2026-01-01T10:05:00")) == at("2026-01-01T10:05:00")
    assert latest_slot(s, at("2026-01-01T10:07:30")) == at("2026-01-01T10:05:00")


def test_first_sight_owes_nothing() -> None:
    d = decide(sched(), None, at("2026-01-01T10:07:00"))
    assert (d.slot, d.next_time) == (None, at("2026-01-01T10:10:00"))


def test_due_slot_fires_and_missed_ones_are_counted() -> None:
    status = ScheduleStatus(schedule_id="s", next_schedule_time=at("2026-01-01T10:10:00"))
    d = decide(sched(), status, at("2026-01-01T10:26:00"))
    assert d.slot == at("2026-01-01T10:25:00")
    assert d.skipped == 3  # 10:10, 10:15, 10:20
    assert d.next_time == at("2026-01-01T10:30:00")


def test_starting_deadline_skips_a_late_slot() -> None:
    status = ScheduleStatus(schedule_id="s", next_schedule_time=at("2026-01-01T10:10:00"))
    late = decide(sched(starting_deadline_seconds=30), status, at("2026-01-01T10:11:00"))
    assert late.slot is None and late.reason == "missed its starting deadline"
    ok = decide(sched(starting_deadline_seconds=90), status, at("2026-01-01T10:11:00"))
    assert ok.slot == at("2026-01-01T10:10:00")


def test_suspended_schedule_does_not_fire() -> None:
    status = ScheduleStatus(schedule_id="s", next_schedule_time=at("2026-01-01T10:10:00"))
    assert decide(sched(enabled=False), status, at("2026-01-01T10:10:01")).slot is None


def test_fire_ids_are_stable() -> None:
    assert fire_id("nightly", at("2026-01-01T00:00:00")) == "cron:nightly:1767225600"


@pytest.mark.parametrize(
    ("cron", "tz", "message"),
    [
        ("* * * *", "UTC", "5 fields"),
        ("61 * * * *", "UTC", "invalid cron"),
        ("* * * * *", "Mars/Olympus", "unknown time zone"),
        ("* * * * * *", "UTC", "5 fields"),
    ],
)
def test_bad_schedules(cron: str, tz: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_schedule(sched(cron=cron, timezone=tz))


def test_an_edited_expression_applies_at_once() -> None:
    # A daily 03:00 schedule, edited at 10:00 to every five minutes: its stored next slot
    # (tomorrow 03:00) belongs to the old expression and must not hold the new one back.
    daily = sched(cron="0 3 * * *")
    status = ScheduleStatus(
        schedule_id="s", next_schedule_time=at("2026-01-02T03:00:00"), timing=daily.timing()
    )
    edited = sched(cron="*/5 * * * *")
    d = decide(edited, status, at("2026-01-01T10:01:00"))
    assert (d.slot, d.skipped, d.next_time) == (None, 0, at("2026-01-01T10:05:00"))
    assert decide(daily, status, at("2026-01-01T10:01:00")).next_time == at("2026-01-02T03:00:00")


def test_an_edited_time_zone_applies_at_once() -> None:
    utc = sched(cron="0 9 * * *")
    status = ScheduleStatus(
        schedule_id="s", next_schedule_time=at("2026-01-02T09:00:00"), timing=utc.timing()
    )
    tokyo = sched(cron="0 9 * * *", timezone="Asia/Tokyo")
    d = decide(tokyo, status, at("2026-01-01T12:00:00"))
    assert d.next_time == at("2026-01-02T00:00:00")  # 09:00 in Tokyo, not 9 hours late


def test_timing_ignores_what_does_not_decide_when() -> None:
    assert sched().timing() == sched(job="other", payload={"a": 1}, enabled=False).timing()
    assert sched().timing() != sched(cron="*/10 * * * *").timing()
    assert sched().timing() != sched(timezone="Europe/Paris").timing()


def test_a_status_without_timing_keeps_its_slot() -> None:
    # written before the timing was recorded: no reset (and so no slot skipped) on upgrade
    status = ScheduleStatus(schedule_id="s", next_schedule_time=at("2026-01-01T10:10:00"))
    assert decide(sched(), status, at("2026-01-01T10:11:00")).slot == at("2026-01-01T10:10:00")

"""Checks on what a caller hands the SDK, each failing with a message that names the rule."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from bananas.errors import InvalidJobError
from bananas.models import Priority
from bananas.routing import validate_routing_key

if TYPE_CHECKING:
    from bananas.models import Schedule

__all__ = [
    "JOB_NAME_MAX",
    "validate_job_name",
    "validate_non_negative",
    "validate_priority",
    "validate_routing_key",
    "validate_schedule",
    "zone",
]

JOB_NAME_MAX = 200


def validate_priority(priority: Any) -> Priority:
    """Return ``priority`` as a :class:`Priority`; raises :class:`InvalidJobError` if unknown."""
    try:
        return Priority(priority)
    except ValueError:
        accepted = ", ".join(p.value for p in Priority)
        raise InvalidJobError(f"unknown priority {priority!r}: use one of {accepted}") from None


def validate_job_name(name: Any) -> str:
    """Return ``name`` if it is a non-empty handler name; raises :class:`InvalidJobError`."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidJobError("a job needs a non-empty handler name")
    if len(name) > JOB_NAME_MAX:
        raise InvalidJobError(f"job name is longer than {JOB_NAME_MAX} characters")
    return name


def validate_non_negative(value: float | None, what: str) -> float | None:
    """Return ``value`` unless it is negative; raises :class:`InvalidJobError`."""
    if value is not None and value < 0:
        raise InvalidJobError(f"{what} must not be negative, got {value!r}")
    return value


def zone(name: str) -> ZoneInfo:
    """The time zone called ``name``; raises :class:`InvalidJobError` for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a name that is a folder of the tz database ("America") is not a zone.
        raise InvalidJobError(f"unknown time zone {name!r}") from None


def validate_schedule(schedule: Schedule) -> Schedule:
    """Return ``schedule`` if its cron expression (5 fields), time zone and routing key
    are valid; raises :class:`InvalidJobError` (a ValueError) naming what is wrong."""
    if len(schedule.cron.split()) != 5:
        raise InvalidJobError(f"cron expression {schedule.cron!r} must have 5 fields")
    if not croniter.is_valid(schedule.cron):
        raise InvalidJobError(f"invalid cron expression {schedule.cron!r}")
    zone(schedule.timezone)
    validate_routing_key(schedule.routing_key)
    validate_job_name(schedule.job)
    return schedule

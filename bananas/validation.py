"""Checks on what a caller hands the SDK, each failing with a message that names the rule."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from bananas.errors import InvalidJobError
from bananas.models import MAX_DURATION_SECONDS, Priority
from bananas.routing import validate_routing_key

if TYPE_CHECKING:
    from bananas.models import Schedule

__all__ = [
    "JOB_NAME_MAX",
    "MAX_COUNT",
    "MAX_DURATION_SECONDS",
    "validate_count",
    "validate_duration",
    "validate_job_name",
    "validate_non_negative",
    "validate_optional_duration",
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


# -- numbers Redis must be able to store ------------------------------------------------------
#
# Durations become milliseconds in Lua, where numbers are doubles (integers exact up to
# 2**53), and deadlines are Redis' TIME plus the duration, stored as sorted-set scores
# and PEXPIRE arguments (which Redis refuses once now + ttl overflows a 64-bit
# millisecond time). A century keeps every deadline exact and far from both limits; a
# duration longer than that is a mistake (``1e20``, ``float('inf')``), not a plan.

#: The largest count (retries, limits): what a Lua number and a Redis integer both hold.
MAX_COUNT = 2**31 - 1


def validate_duration(value: Any, what: str, *, positive: bool = False) -> float:
    """Return ``value`` (seconds) if it is a finite number in [0, MAX_DURATION_SECONDS]
    (above 0 with ``positive``); raises :class:`InvalidJobError` naming ``what``."""
    low = "above 0" if positive else "at least 0"
    rule = f"{what} must be a finite number of seconds, {low} and at most {MAX_DURATION_SECONDS}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidJobError(f"{rule} (100 years), got {value!r}")
    seconds = float(value)
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN, ±inf
        raise InvalidJobError(f"{rule} (100 years), got {value!r}")
    if seconds < 0 or seconds > MAX_DURATION_SECONDS or (positive and seconds == 0):
        raise InvalidJobError(f"{rule} (100 years), got {value!r}")
    return seconds


def validate_optional_duration(value: Any, what: str) -> float | None:
    """:func:`validate_duration`, with None passed through (meaning "the default")."""
    return None if value is None else validate_duration(value, what)


def validate_count(value: Any, what: str, *, minimum: int = 0) -> int:
    """Return ``value`` if it is a whole number in [minimum, MAX_COUNT]; raises
    :class:`InvalidJobError` naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_COUNT:
        raise InvalidJobError(
            f"{what} must be a whole number from {minimum} to {MAX_COUNT}, got {value!r}"
        )
    return value

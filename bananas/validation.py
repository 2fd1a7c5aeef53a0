"""Checks on what a caller hands the SDK, each failing with a message that names the rule."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from bananas.durations import DURATION_FORMS, parse_duration
from bananas.errors import InvalidJobError
from bananas.models import MAX_DURATION_SECONDS, Priority
from bananas.routing import validate_routing_key

if TYPE_CHECKING:
    from bananas.models import Schedule

__all__ = [
    "JOB_NAME_MAX",
    "MAX_COUNT",
    "MAX_DURATION_SECONDS",
    "check_finite",
    "limit_spec",
    "seconds",
    "validate_count",
    "validate_cron",
    "validate_duration",
    "validate_group",
    "validate_job_name",
    "validate_limit_key",
    "validate_non_negative",
    "validate_optional_duration",
    "validate_priority",
    "validate_routing_key",
    "validate_schedule",
    "validate_timeout",
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
    """Return ``name`` if it is a handler name: non-empty, at most 200 characters, with no
    whitespace or control characters (they would split or forge log lines).

    Raises :class:`InvalidJobError`.
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidJobError("a job needs a non-empty handler name")
    if len(name) > JOB_NAME_MAX:
        raise InvalidJobError(f"job name is longer than {JOB_NAME_MAX} characters")
    # Every whitespace character but the ASCII space is also not printable (they are
    # separators or controls), so this is "no whitespace, no control" in two C calls.
    if " " in name or not name.isprintable():
        raise InvalidJobError(
            f"job name {name!r} has whitespace or control characters: use e.g. "
            "letters, digits, '_', '-', '.' or ':'"
        )
    return name


def validate_non_negative(value: float | None, what: str) -> float | None:
    """Return ``value`` unless it is negative; raises :class:`InvalidJobError`."""
    if value is not None and value < 0:
        raise InvalidJobError(f"{what} must not be negative, got {value!r}")
    return value


def seconds(value: Any, what: str) -> float | None:
    """``value`` as seconds: a number, or a Go duration string (``"10m"``, ``"1h30m"``).

    None stays None. Raises :class:`InvalidJobError` for anything else, or for a
    negative, NaN or infinite value.
    """
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError:
            raise InvalidJobError(
                f"{what} {value!r} is not a duration: give seconds or {DURATION_FORMS}"
            ) from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidJobError(
            f"{what} must be seconds (a number) or a duration string like '10m', "
            f"got {type(value).__name__}"
        )
    if not math.isfinite(value) or value < 0:
        raise InvalidJobError(f"{what} must not be negative, NaN or infinite, got {value!r}")
    return float(value)


def validate_timeout(value: Any) -> float | None:
    """A job's own time limit: more than 0 seconds, or None for the worker's JOB_TIMEOUT."""
    timeout = seconds(value, "timeout")
    if timeout is not None and timeout <= 0:
        raise InvalidJobError(
            "timeout must be more than 0 seconds; leave it out (None) for the worker's JOB_TIMEOUT"
        )
    return timeout


def check_finite(payload: Any, encoded: bytes | str) -> None:
    """Refuse NaN and infinities in a payload: JSON has no such numbers, and the encoder
    would silently write ``null``. Only walked when the encoding holds a ``null``."""
    if "null" not in (encoded if isinstance(encoded, str) else encoded.decode()):
        return
    stack = [payload]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise InvalidJobError(f"the payload holds {item!r}, which JSON cannot represent")
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def zone(name: str) -> ZoneInfo:
    """The time zone called ``name``; raises :class:`InvalidJobError` for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a name that is a folder of the tz database ("America") is not a zone.
        raise InvalidJobError(f"unknown time zone {name!r}") from None


def validate_cron(expression: str) -> str:
    """Return ``expression`` if it is a valid 5-field cron expression; raises
    :class:`InvalidJobError`."""
    if len(expression.split()) != 5:
        raise InvalidJobError(f"cron expression {expression!r} must have 5 fields")
    if not croniter.is_valid(expression):
        raise InvalidJobError(f"invalid cron expression {expression!r}")
    return expression


def validate_schedule(schedule: Schedule) -> Schedule:
    """Return ``schedule`` if its cron expression (5 fields), time zone and routing key
    are valid; raises :class:`InvalidJobError` (a ValueError) naming what is wrong."""
    validate_cron(schedule.cron)
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
    kind = type(value)
    if kind is float or kind is int or (kind is not bool and isinstance(value, int | float)):
        seconds = float(value)
        # NaN fails both comparisons, ±inf the bounds; the message is built only on failure
        # (the worker checks every delivered record with this).
        if (seconds > 0.0 if positive else seconds >= 0.0) and seconds <= MAX_DURATION_SECONDS:
            return seconds
    low = "above 0" if positive else "at least 0"
    rule = f"{what} must be a finite number of seconds, {low} and at most {MAX_DURATION_SECONDS}"
    raise InvalidJobError(f"{rule} (100 years), got {value!r}")


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


# -- flow control: groups and limits ---------------------------------------------------------

#: Longest group name (and limit key).
GROUP_MAX = 200
_RATE_UNITS = {"s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
#: The default burst covers this many ms of the rate (at least 2 jobs): the time a group
#: over its rate spends between its due moment and the fetch that serves it (the
#: promoter's hand-back and a worker's wake-up), which a smaller bucket loses for good.
DEFAULT_BURST_MS = 50.0


def validate_group(group: Any) -> str:
    """Return ``group`` if it is a usable group name; raises :class:`InvalidJobError`.

    1-200 characters, without the bytes 0 and 1 (the scripts' separators) or a newline,
    not starting with "name:" (reserved for job-name limits) and not ending in "*".
    """
    if (
        not isinstance(group, str)
        or not 0 < len(group) <= GROUP_MAX
        or any(c in group for c in "\x00\x01\n")
        or group.startswith("name:")
        or group.endswith("*")
    ):
        raise InvalidJobError(
            f"invalid group {group!r}: 1-{GROUP_MAX} characters, no control characters, "
            "not starting with 'name:' nor ending in '*'"
        )
    return group


def validate_limit_key(key: Any) -> str:
    """A limit key: a group, a pattern (a group prefix followed by "*"), or
    "name:<job name>" (every job of that name that has no group)."""
    if isinstance(key, str) and key.startswith("name:"):
        return "name:" + validate_job_name(key[5:])
    if isinstance(key, str) and key.endswith("*") and key.count("*") == 1:
        if len(key) > 1:
            validate_group(key[:-1])
        return key
    return validate_group(key)


def limit_spec(rate: str | None, concurrency: int | None, burst: int | None) -> str:
    """The stored form of a limit, "interval ms|burst|concurrency" ("0": none); "" for none.

    ``rate`` is "N/s", "N/m" or "N/h"; ``burst`` is how many jobs may start back to back
    (default: 50 ms of the rate, at least 2; :data:`DEFAULT_BURST_MS`); ``concurrency``
    how many may run at once. Raises :class:`InvalidJobError`.
    """
    interval = 0.0
    if rate is not None:
        count, _, unit = str(rate).partition("/")
        try:
            n = float(count)
        except ValueError:
            n = 0.0
        if unit not in _RATE_UNITS or not 0 < n < 1e9:
            raise InvalidJobError(f"rate must look like '100/s', '6000/m' or '10/h', got {rate!r}")
        interval = _RATE_UNITS[unit] / n
    if concurrency is not None and (not isinstance(concurrency, int) or concurrency < 1):
        raise InvalidJobError(f"concurrency must be a whole number >= 1, got {concurrency!r}")
    if burst is not None and (not isinstance(burst, int) or burst < 1 or rate is None):
        raise InvalidJobError(f"burst must be a whole number >= 1 with a rate, got {burst!r}")
    if rate is None and concurrency is None:
        return ""
    if burst is None:
        burst = max(2, math.ceil(DEFAULT_BURST_MS / interval)) if interval else 2
    return f"{interval:.6f}|{burst}|{concurrency or 0}"

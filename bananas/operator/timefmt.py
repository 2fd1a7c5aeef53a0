"""Timestamps in and out of Kubernetes objects.

Kubernetes writes ``metav1.Time`` as RFC 3339 in UTC with second precision
(``2024-05-01T12:00:00Z``). Times the operator reads back from a status may have
been edited by hand, so :func:`parse_time` never raises: garbage reads as None.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def format_time(moment: datetime) -> str:
    """``moment`` as an RFC 3339 UTC string with second precision."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_epoch(seconds: float) -> str:
    """A Unix time as an RFC 3339 UTC string with second precision."""
    return format_time(datetime.fromtimestamp(seconds, UTC))


def parse_time(value: Any) -> datetime | None:
    """Read an RFC 3339 string (or a datetime); None for anything unreadable."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

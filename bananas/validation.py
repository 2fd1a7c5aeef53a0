"""Checks on what a caller hands the SDK, each failing with a message that names the rule."""

from __future__ import annotations

from typing import Any

from bananas.errors import InvalidJobError, InvalidRoutingKeyError
from bananas.keys import ROUTING_KEY_RULE, is_valid_routing_key
from bananas.models import Priority

JOB_NAME_MAX = 200


def validate_routing_key(routing_key: Any) -> str:
    """Return ``routing_key`` if it follows the rule (seed: ``ValidateRoutingKey``).

    Raises :class:`InvalidRoutingKeyError` naming the rule.
    """
    if not isinstance(routing_key, str) or not is_valid_routing_key(routing_key):
        raise InvalidRoutingKeyError(
            f"invalid routing key {routing_key!r}: a routing key is {ROUTING_KEY_RULE}"
        )
    return routing_key


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

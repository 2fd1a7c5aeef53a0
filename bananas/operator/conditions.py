"""Status conditions, the way Kubernetes' ``metav1.Condition`` wants them.

A condition's ``lastTransitionTime`` only moves when its status flips, so a
reader can tell "Redis has been unreachable for an hour" from "Redis just went
away". Conditions read back from a status that someone edited by hand are
taken only when they look like conditions; anything else is dropped, not
trusted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bananas.operator.timefmt import format_time

TRUE = "True"
FALSE = "False"
UNKNOWN = "Unknown"
_STATUSES = {TRUE, FALSE, UNKNOWN}


@dataclass(frozen=True)
class Condition:
    """One observation: ``type`` is ``status`` because of ``reason`` (CamelCase)."""

    type: str
    status: str
    reason: str
    message: str = ""


def _valid(item: Any) -> bool:
    return (
        isinstance(item, Mapping)
        and isinstance(item.get("type"), str)
        and item.get("status") in _STATUSES
    )


def merge_conditions(
    existing: Any,
    updates: Iterable[Condition],
    *,
    now: datetime,
    generation: int | None = None,
) -> list[dict[str, Any]]:
    """Return ``existing`` conditions with ``updates`` applied, sorted by type.

    ``existing`` is whatever the status held (malformed entries are dropped). A
    condition keeps its ``lastTransitionTime`` unless its status changed.
    """
    current: dict[str, dict[str, Any]] = {}
    if isinstance(existing, list):
        current = {item["type"]: dict(item) for item in existing if _valid(item)}
    for cond in updates:
        old = current.get(str(cond.type))
        since = old.get("lastTransitionTime") if old else None
        if old is None or old.get("status") != cond.status or not isinstance(since, str):
            since = format_time(now)
        entry: dict[str, Any] = {
            "type": str(cond.type),
            "status": cond.status,
            "reason": str(cond.reason),
            "message": cond.message,
            "lastTransitionTime": since,
        }
        if generation is not None:
            entry["observedGeneration"] = generation
        current[entry["type"]] = entry
    return [current[key] for key in sorted(current)]


def find_condition(conditions: Any, kind: str) -> Mapping[str, Any] | None:
    """The condition of type ``kind`` in a status' ``conditions`` list, or None.

    ``conditions`` is whatever the status held: anything that is not a list of
    well-formed conditions counts as holding none.
    """
    if not isinstance(conditions, list):
        return None
    for item in conditions:
        if _valid(item) and item["type"] == kind:
            return item  # type: ignore[no-any-return]
    return None


def condition_status(conditions: Any, kind: str) -> str | None:
    """The ``status`` (True, False, Unknown) of condition ``kind``, or None when absent."""
    found = find_condition(conditions, kind)
    return found["status"] if found is not None else None

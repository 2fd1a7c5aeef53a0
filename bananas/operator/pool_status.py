"""A WorkerPool's status, as a pure function of what one poll observed.

The status answers three questions, each a condition:

- ``RedisReachable``: could the operator read the queue statistics? (False with
  the reason: the Secret is missing, Redis does not answer, ...)
- ``Scaling``: is the pool changing size, or being held back by a stabilisation
  window?
- ``Ready``: does the pool run the pods it should, all of them ready?

Beside them: the numbers the autoscaler decided on (queue depth per priority,
in-flight jobs, the oldest job's age) so ``kubectl get wp`` shows why a pool has
the size it has, and the autoscaler's memory (``status.autoscaler``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bananas.models import PRIORITY_ORDER
from bananas.operator.autoscaler import Decision, Load
from bananas.operator.conditions import FALSE, TRUE, UNKNOWN, Condition
from bananas.operator.reasons import ConditionType, Reason

READY = ConditionType.READY
SCALING = ConditionType.SCALING
REDIS = ConditionType.REDIS_REACHABLE


@dataclass(frozen=True)
class Observation:
    """What one poll of a pool saw."""

    #: The pool's Deployment as stored, None when it does not exist.
    deployment: Mapping[str, Any] | None
    #: The queue statistics, None when Redis could not be read.
    load: Load | None
    #: Why Redis could not be read: (reason, message).
    redis_problem: tuple[str, str] | None = None
    #: Why the spec could not be used: a message.
    spec_problem: str | None = None


def _count(obj: Mapping[str, Any] | None, section: str, field: str) -> int:
    part = obj.get(section) if obj else None
    value = part.get(field) if isinstance(part, Mapping) else None
    return value if isinstance(value, int) else 0


def observed_fields(seen: Observation) -> dict[str, Any]:
    """Replica counts from the Deployment and queue numbers from Redis."""
    fields: dict[str, Any] = {
        "replicas": _count(seen.deployment, "status", "replicas"),
        "readyReplicas": _count(seen.deployment, "status", "readyReplicas"),
    }
    if seen.load is not None:
        load = seen.load
        fields["queued"] = load.queued
        fields["queueDepth"] = {p.value: load.depth.get(p, 0) for p in PRIORITY_ORDER}
        fields["inFlight"] = load.in_flight
        fields["oldestJobAge"] = round(load.oldest_age, 3) if load.oldest_age is not None else None
    return fields


def _ready(seen: Observation, desired: int) -> Condition:
    if seen.spec_problem is not None:
        return Condition(READY, FALSE, Reason.INVALID_SPEC, seen.spec_problem)
    if seen.deployment is None:
        message = "the Deployment does not exist yet"
        return Condition(READY, FALSE, Reason.DEPLOYMENT_MISSING, message)
    ready = _count(seen.deployment, "status", "readyReplicas")
    if desired == 0:
        return Condition(READY, TRUE, Reason.SCALED_TO_ZERO, "no pods wanted: nothing to do")
    if ready >= desired:
        return Condition(READY, TRUE, Reason.PODS_READY, f"{ready}/{desired} pods ready")
    return Condition(READY, FALSE, Reason.PODS_NOT_READY, f"{ready}/{desired} pods ready")


def _scaling(seen: Observation, desired: int, decision: Decision | None) -> Condition:
    running = _count(seen.deployment, "status", "replicas")
    if seen.deployment is not None and running != desired:
        return Condition(SCALING, TRUE, Reason.SCALING, f"{running} -> {desired} pods")
    if decision is not None and decision.held_back:
        return Condition(
            SCALING,
            TRUE,
            Reason.STABILIZING,
            f"recommended {decision.recommendation}, holding {decision.desired}"
            " within the stabilization window or cooldown",
        )
    return Condition(SCALING, FALSE, Reason.STABLE, f"{desired} pods wanted")


def _redis(seen: Observation) -> Condition:
    if seen.redis_problem is not None:
        reason, message = seen.redis_problem
        return Condition(REDIS, FALSE, reason, message)
    if seen.load is None:
        return Condition(REDIS, UNKNOWN, Reason.NOT_CHECKED, "queue statistics not read")
    return Condition(REDIS, TRUE, Reason.CONNECTED, "queue statistics read")


def pool_conditions(seen: Observation, desired: int, decision: Decision | None) -> list[Condition]:
    """The Ready, Scaling and RedisReachable conditions for one poll."""
    return [_ready(seen, desired), _scaling(seen, desired, decision), _redis(seen)]

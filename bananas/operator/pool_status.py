"""A WorkerPool's status, as a pure function of what one poll observed.

The status answers these questions, each a condition:

- ``Ready``, ``Reconciling``, ``Stalled`` (:mod:`~bananas.operator.health`):
  does the pool run this generation of its spec, fully rolled out, and if not,
  is it on its way or stuck?
- ``RedisReachable``: could the operator read the queue statistics? (False with
  the reason: the Secret is missing, Redis does not answer, ...)
- ``Scaling``: is the pool changing size, or being held back by a stabilisation
  window or by busy pods? (``QueuePaused`` when it is stable and ready jobs wait
  on paused routing keys, which the autoscaler does not count.)

Beside them: the numbers the autoscaler decided on (queue depth per priority,
in-flight jobs, the oldest job's age, the paused routing keys and the jobs they
hold) so ``kubectl get wp`` shows why a pool has
the size it has, and the autoscaler's memory (``status.autoscaler``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bananas.models import PRIORITY_ORDER
from bananas.operator.autoscaler import Decision, Load
from bananas.operator.conditions import FALSE, TRUE, UNKNOWN, Condition
from bananas.operator.health import Problem, deployment_health
from bananas.operator.reasons import ConditionType, Reason

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
    #: The pool's ``metadata.generation`` the observation is about.
    generation: int | None = None
    #: The refusal of this generation's spec or pod template, if it was refused.
    refusal: Problem | None = None
    #: The first pod that cannot get going, if the poll looked at the pods.
    pods: Problem | None = None
    #: Busy pods that keep the pool above the autoscaler's size, if any.
    held_for_busy: int = 0
    #: The pause annotation holds the pool at its size.
    paused: bool = False
    #: Redis has been unreadable long enough for the fallback size to apply.
    fallback: bool = False


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
        fields["due"] = load.due
        fields["oldestJobAge"] = round(load.oldest_age, 3) if load.oldest_age is not None else None
        # Always written, empty when nothing is paused: a merge patch that left it out
        # would keep a resumed key listed.
        fields["pausedRoutingKeys"] = [
            {
                "routingKey": key.routing_key,
                "priorities": [p.value for p in key.priorities],
                "waiting": key.waiting,
            }
            for key in load.paused
        ]
    return fields


def _health(seen: Observation) -> list[Condition]:
    refusal = seen.refusal
    if seen.spec_problem is not None:
        refusal = Problem(Reason.INVALID_SPEC, seen.spec_problem)
    return deployment_health(seen.deployment, seen.generation, refusal=refusal, pods=seen.pods)


def _scaling(seen: Observation, desired: int, decision: Decision | None) -> Condition:
    running = _count(seen.deployment, "status", "replicas")
    if seen.paused:
        message = "held at its size by the bananas.dev/autoscaling-paused annotation"
        return Condition(SCALING, FALSE, Reason.PAUSED, message)
    if seen.fallback:
        message = f"Redis unreadable: holding the fallback size, {desired} pods"
        return Condition(SCALING, FALSE, Reason.FALLBACK, message)
    if seen.held_for_busy:
        return Condition(
            SCALING,
            TRUE,
            Reason.WAITING_FOR_BUSY_PODS,
            f"recommended {decision.recommendation if decision else desired}, holding"
            f" {desired}: {seen.held_for_busy} pod(s) are running jobs",
        )
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
    if seen.load is not None and seen.load.paused_waiting:
        return Condition(SCALING, FALSE, Reason.QUEUE_PAUSED, _paused_message(seen.load, desired))
    return Condition(SCALING, FALSE, Reason.STABLE, f"{desired} pods wanted")


def _paused_message(load: Load, desired: int) -> str:
    keys = ", ".join(
        f"{key.routing_key} ({'/'.join(p.value for p in key.priorities)}: {key.waiting})"
        for key in load.paused
    )
    return (
        f"{desired} pods wanted; {load.paused_waiting} ready job(s) on paused routing keys"
        f" not counted: {keys}"
    )


def _redis(seen: Observation) -> Condition:
    if seen.redis_problem is not None:
        reason, message = seen.redis_problem
        return Condition(REDIS, FALSE, reason, message)
    if seen.load is None:
        return Condition(REDIS, UNKNOWN, Reason.NOT_CHECKED, "queue statistics not read")
    return Condition(REDIS, TRUE, Reason.CONNECTED, "queue statistics read")


def pool_conditions(seen: Observation, desired: int, decision: Decision | None) -> list[Condition]:
    """Ready, Reconciling, Stalled, Scaling and RedisReachable for one poll."""
    return [*_health(seen), _scaling(seen, desired, decision), _redis(seen)]


def _without_run_ends(status: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(status)
    memory = out.get("autoscaler")
    if isinstance(memory, Mapping) and isinstance(memory.get("history"), list):
        runs = [
            {k: v for k, v in run.items() if k != "to"} if isinstance(run, Mapping) else run
            for run in memory["history"]
        ]
        out["autoscaler"] = {**memory, "history": runs}
    return out


def _shaped(current: Any, new: Any) -> Any:
    """``current`` cut to the shape of ``new``: the keys a merge patch of ``new`` would set
    (keys only someone else wrote, such as a hand edit's junk, are not compared)."""
    if isinstance(new, Mapping) and isinstance(current, Mapping):
        return {key: _shaped(current.get(key), value) for key, value in new.items()}
    return current


def status_changed(current: Any, new: Mapping[str, Any]) -> bool:
    """Whether writing ``new`` would change the stored status ``current`` in a way that matters.

    The end time (``to``) of the autoscaler's current run moves on every poll; on its own
    it is not worth a write (1,000 idle pools would cost 1,000 writes per poll interval).
    What it is used for: after an operator restart, the runs tell the stabilisation
    windows what was recommended when. A stale end time makes a run look older than it is,
    and it is rewritten with the next real change (a new recommendation, a new size, any
    queue number), so a window may close up to one such interval early after a restart.
    """
    if not isinstance(current, Mapping):
        return True
    wanted = _without_run_ends(new)
    return bool(_shaped(_without_run_ends(current), wanted) != wanted)

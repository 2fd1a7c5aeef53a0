"""Scale-down that spares busy pods, as pure functions.

The autoscaler only sets a Deployment's ``spec.replicas``; which pods go is
the ReplicaSet controller's choice. It ranks pods (unscheduled before
scheduled, pending before running, not ready before ready, then by the
``controller.kubernetes.io/pod-deletion-cost`` annotation, lowest first, then
by age), and every busy worker is Ready. So, before a pool shrinks (and while
a rollout replaces its pods), the operator:

1. reads the workers' heartbeats from Redis (each carries its pod's name and
   its in-flight count, :class:`bananas.models.WorkerInfo`) and matches them to
   the pool's pods (:func:`pod_work`);
2. sets the deletion cost of each pod to its in-flight count
   (:func:`cost_patches`): idle pods cost 0 and go first, the busiest last;
3. never shrinks below the number of busy pods (:func:`safe_size`), for at
   most ``hold_limit`` seconds since it first held back (the pool's
   ``terminationGracePeriodSeconds``, which is at least ``jobTimeout``).

What makes this safe even when a heartbeat is a few seconds old and an idle
pod has just taken a job: the pod's grace period covers ``jobTimeout``, so
the worker's SIGTERM drain (SHUTDOWN_TIMEOUT, a few seconds below the grace
period) lets that job finish. The ranking only decides whether a busy pod is
asked to drain at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bananas.models import WorkerInfo

#: The annotation the ReplicaSet controller ranks scale-down victims by (int32, as text).
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
#: Highest deletion cost the operator writes (the annotation is an int32).
MAX_COST = 1_000_000


def _name(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("name") or "")


def _live(pod: Mapping[str, Any]) -> bool:
    return bool(_name(pod)) and not (pod.get("metadata") or {}).get("deletionTimestamp")


def pod_work(pods: Iterable[Mapping[str, Any]], workers: Iterable[WorkerInfo]) -> dict[str, int]:
    """In-flight jobs per live pod, from the freshest heartbeat naming it (0 without one)."""
    freshest: dict[str, WorkerInfo] = {}
    for info in workers:
        if info.pod_name:
            seen = freshest.get(info.pod_name)
            if seen is None or info.last_seen > seen.last_seen:
                freshest[info.pod_name] = info
    work: dict[str, int] = {}
    for pod in pods:
        if _live(pod):
            beat = freshest.get(_name(pod))
            work[_name(pod)] = max(0, beat.in_flight) if beat is not None else 0
    return work


def busy_pods(work: Mapping[str, int]) -> int:
    """How many pods are running at least one job."""
    return sum(1 for jobs in work.values() if jobs > 0)


def safe_size(desired: int, current: int, busy: int) -> int:
    """The size to apply: ``desired``, but a shrink stops at the number of busy pods."""
    if desired >= current:
        return desired
    return min(current, max(desired, busy))


def cost_patches(pods: Iterable[Mapping[str, Any]], work: Mapping[str, int]) -> dict[str, str]:
    """The pods whose deletion cost must change, with the value to write.

    A pod's cost is its in-flight count (capped at :data:`MAX_COST`); a pod
    without the annotation counts as cost 0, so idle pods that never had one
    are left alone.
    """
    patches: dict[str, str] = {}
    for pod in pods:
        name = _name(pod)
        if not _live(pod) or name not in work:
            continue
        annotations = (pod.get("metadata") or {}).get("annotations") or {}
        wanted = str(min(work[name], MAX_COST))
        if str(annotations.get(DELETION_COST, "0")) != wanted:
            patches[name] = wanted
    return patches


@dataclass(frozen=True)
class Hold:
    """Whether a shrink is held back for busy pods, and since when (Unix seconds)."""

    size: int
    busy: int
    since: float | None


def hold(
    desired: int,
    current: int,
    busy: int,
    *,
    now: float,
    since: float | None,
    limit: float,
) -> Hold:
    """Apply :func:`safe_size` for at most ``limit`` seconds of holding.

    ``since`` is when the current hold started (None: not holding). Returns the
    size to apply and the hold's start to remember (None once it ends). Past
    the limit the pool shrinks to ``desired`` regardless: by then every job a
    busy pod runs has outlived the pool's ``jobTimeout``, and SIGTERM still
    gives it the grace period.
    """
    size = safe_size(desired, current, busy)
    if size == desired:
        return Hold(size=desired, busy=0, since=None)
    started = now if since is None else since
    if now - started >= limit:
        return Hold(size=desired, busy=0, since=None)
    return Hold(size=size, busy=busy, since=started)

"""Health as kstatus, Argo CD and ``kubectl wait`` read it, as pure functions.

Every WorkerPool and CronSchedule carries three conditions, each with the
``observedGeneration`` it was computed for:

- ``Reconciling``: True while the spec of this generation is not yet in effect
  (the operator has not applied it, the Deployment controller has not seen it,
  pods of the old template still run, or pods are still to come).
- ``Stalled``: True while the operator or the cluster cannot make progress
  without a change: a spec or pod template the API refused, a Deployment past
  its ``progressDeadlineSeconds``, pods that cannot be scheduled or cannot
  pull their image (with the pod's own message).
- ``Ready``: True when neither is, with the reason of the one that is
  otherwise.

Both abnormal conditions are False (not absent) when all is well, so a reader
always sees which generation they speak for. ``Stalled`` wins over
``Reconciling`` (the latter is then False): kstatus reads Reconciling first,
and a stalled resource must read as Failed, not as "in progress" for ever.

"This generation" needs the Deployment to say which generation of the
resource it renders: the operator stamps ``bananas.dev/generation`` on the
Deployment's metadata (not its pod template, so the stamp rolls nothing).
A Deployment without the stamp (written by an older operator) is taken at its
word for the generation.

A refusal is remembered per generation: once the API refused generation 7's
pod template, every later poll of generation 7 reports it (the handlers keep
it in memory and :func:`refusal_in` reads it back from the status after a
restart), so a poll never paints a refused edit Ready.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bananas.operator.conditions import FALSE, TRUE, Condition, find_condition
from bananas.operator.meta import GENERATION_ANNOTATION
from bananas.operator.reasons import ConditionType, Reason

#: Reasons that record a refusal of one generation's spec (kept until the spec changes).
REFUSALS = frozenset(
    {
        Reason.INVALID_SPEC,
        Reason.INVALID_POD_TEMPLATE,
        Reason.INVALID_SCHEDULE,
        Reason.INVALID_TIME_ZONE,
    }
)

#: Container waiting reasons that need a change (of the image, a Secret, the code) to clear.
STUCK_CONTAINER_REASONS = {
    "ErrImagePull": Reason.ERR_IMAGE_PULL,
    "ImagePullBackOff": Reason.IMAGE_PULL_BACK_OFF,
    "InvalidImageName": Reason.INVALID_IMAGE_NAME,
    "ErrImageNeverPull": Reason.ERR_IMAGE_NEVER_PULL,
    "CreateContainerConfigError": Reason.CREATE_CONTAINER_CONFIG_ERROR,
    "CreateContainerError": Reason.CREATE_CONTAINER_ERROR,
    "CrashLoopBackOff": Reason.CRASH_LOOP_BACK_OFF,
}


@dataclass(frozen=True)
class Problem:
    """Why something is not (yet) as wanted: a CamelCase reason and a message."""

    reason: Reason
    message: str


def _int(obj: Any, *path: str) -> int | None:
    for key in path:
        obj = obj.get(key) if isinstance(obj, Mapping) else None
    return obj if isinstance(obj, int) and not isinstance(obj, bool) else None


@dataclass(frozen=True)
class Rollout:
    """A generation-aware view of a Deployment: is its spec fully rolled out?"""

    #: ``spec.replicas``.
    wanted: int
    #: ``metadata.generation`` and ``status.observedGeneration``.
    generation: int
    observed: int
    #: The resource generation the Deployment renders (its stamp), None when unstamped.
    source_generation: int | None
    #: ``status.replicas``, ``updatedReplicas``, ``availableReplicas``.
    replicas: int
    updated: int
    available: int
    #: The message of ``Progressing=False/ProgressDeadlineExceeded``, else None.
    deadline_exceeded: str | None

    @classmethod
    def of(cls, deployment: Mapping[str, Any]) -> Rollout:
        """Read a Deployment (JSON as the API returns it); absent fields count as 0."""
        stamp = (deployment.get("metadata") or {}).get("annotations") or {}
        raw = stamp.get(GENERATION_ANNOTATION) if isinstance(stamp, Mapping) else None
        exceeded = None
        status = deployment.get("status") or {}
        progressing = find_condition(status.get("conditions"), "Progressing")
        if (
            progressing is not None
            and progressing.get("status") == FALSE
            and progressing.get("reason") == "ProgressDeadlineExceeded"
        ):
            exceeded = str(progressing.get("message") or "the rollout made no progress")
        wanted = _int(deployment, "spec", "replicas")
        return cls(
            wanted=1 if wanted is None else wanted,  # the API's default
            generation=_int(deployment, "metadata", "generation") or 0,
            observed=_int(deployment, "status", "observedGeneration") or 0,
            source_generation=int(raw) if isinstance(raw, str) and raw.isdigit() else None,
            replicas=_int(deployment, "status", "replicas") or 0,
            updated=_int(deployment, "status", "updatedReplicas") or 0,
            available=_int(deployment, "status", "availableReplicas") or 0,
            deadline_exceeded=exceeded,
        )

    @property
    def replaced_pods(self) -> bool:
        """True while pods of an older template run beside (or instead of) updated ones."""
        return self.replicas > self.updated or self.updated < self.wanted

    def pending(self, generation: int | None) -> Problem | None:
        """Why the Deployment does not yet run ``generation`` in full, or None when it does."""
        if (
            generation is not None
            and self.source_generation is not None
            and self.source_generation < generation
        ):
            return Problem(Reason.ROLLING_OUT, f"generation {generation} not applied yet")
        if self.observed < self.generation:
            return Problem(Reason.ROLLING_OUT, "the Deployment controller has not seen the change")
        if self.updated < self.wanted:
            return Problem(Reason.ROLLING_OUT, f"{self.updated}/{self.wanted} pods updated")
        if self.replicas > self.updated:
            old = self.replicas - self.updated
            return Problem(Reason.ROLLING_OUT, f"{old} pod(s) of the old template still running")
        if self.available < self.wanted:
            return Problem(Reason.SCALING, f"{self.available}/{self.wanted} pods available")
        return None


def _waiting(pod: Mapping[str, Any]) -> Problem | None:
    status = pod.get("status") or {}
    for item in [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]:
        waiting = ((item or {}).get("state") or {}).get("waiting") or {}
        reason = STUCK_CONTAINER_REASONS.get(str(waiting.get("reason") or ""))
        if reason is not None:
            detail = waiting.get("message") or waiting.get("reason")
            return Problem(reason, f"pod {_name(pod)}: {detail}")
    return None


def _name(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("name") or "?")


def pod_problem(pods: Iterable[Mapping[str, Any]]) -> Problem | None:
    """The first pod that cannot get going without a change, as a :class:`Problem`.

    Unschedulable pods (``PodScheduled=False/Unschedulable``, with the
    scheduler's message) and containers stuck waiting for a reason in
    :data:`STUCK_CONTAINER_REASONS`. Pods being deleted are not looked at.
    """
    for pod in sorted(pods, key=_name):
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue
        conditions = (pod.get("status") or {}).get("conditions")
        scheduled = find_condition(conditions, "PodScheduled")
        if scheduled is not None and scheduled.get("status") == FALSE:
            if scheduled.get("reason") == "Unschedulable":
                detail = scheduled.get("message") or "no node fits"
                return Problem(Reason.UNSCHEDULABLE, f"pod {_name(pod)}: {detail}")
            continue
        waiting = _waiting(pod)
        if waiting is not None:
            return waiting
    return None


def refusal_in(status: Any, generation: int | None) -> Problem | None:
    """The refusal of ``generation`` recorded in a status (a Stalled condition), if any."""
    if generation is None or not isinstance(status, Mapping):
        return None
    stalled = find_condition(status.get("conditions"), ConditionType.STALLED)
    if stalled is None or stalled.get("status") != TRUE:
        return None
    if stalled.get("observedGeneration") != generation:
        return None
    try:
        reason = Reason(str(stalled.get("reason")))
    except ValueError:
        return None
    return Problem(reason, str(stalled.get("message") or "")) if reason in REFUSALS else None


def summarize(
    *, stalled: Problem | None, reconciling: Problem | None, ready: Problem
) -> list[Condition]:
    """Ready, Reconciling and Stalled from what is wrong (if anything) and the good reason."""
    if stalled is not None:
        return [
            Condition(ConditionType.READY, FALSE, stalled.reason, stalled.message),
            Condition(ConditionType.RECONCILING, FALSE, Reason.STALLED, "stalled; see Stalled"),
            Condition(ConditionType.STALLED, TRUE, stalled.reason, stalled.message),
        ]
    healthy = Condition(ConditionType.STALLED, FALSE, Reason.HEALTHY, "nothing is stuck")
    if reconciling is not None:
        return [
            Condition(ConditionType.READY, FALSE, reconciling.reason, reconciling.message),
            Condition(ConditionType.RECONCILING, TRUE, reconciling.reason, reconciling.message),
            healthy,
        ]
    return [
        Condition(ConditionType.READY, TRUE, ready.reason, ready.message),
        Condition(ConditionType.RECONCILING, FALSE, Reason.RECONCILED, "spec in effect"),
        healthy,
    ]


def deployment_health(
    deployment: Mapping[str, Any] | None,
    generation: int | None,
    *,
    refusal: Problem | None = None,
    pods: Problem | None = None,
) -> list[Condition]:
    """Ready, Reconciling and Stalled of a resource that is one Deployment (a WorkerPool).

    ``deployment`` as stored (None: not there); ``generation`` the resource's;
    ``refusal`` the refusal of this generation, if any; ``pods`` the first stuck
    pod (:func:`pod_problem`), if the caller looked.
    """
    if refusal is not None:
        return summarize(stalled=refusal, reconciling=None, ready=refusal)
    if deployment is None:
        missing = Problem(Reason.DEPLOYMENT_MISSING, "the Deployment does not exist yet")
        return summarize(stalled=None, reconciling=missing, ready=missing)
    rollout = Rollout.of(deployment)
    stalled = None
    if rollout.deadline_exceeded is not None:
        stalled = Problem(Reason.PROGRESS_DEADLINE_EXCEEDED, rollout.deadline_exceeded)
    elif pods is not None:
        stalled = pods
    if rollout.wanted == 0:
        ready = Problem(Reason.SCALED_TO_ZERO, "no pods wanted: nothing to do")
    else:
        ready = Problem(Reason.PODS_READY, f"{rollout.available}/{rollout.wanted} pods available")
    return summarize(stalled=stalled, reconciling=rollout.pending(generation), ready=ready)

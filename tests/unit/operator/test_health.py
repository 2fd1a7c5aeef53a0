"""Ready, Reconciling and Stalled from a generation-aware view of a Deployment and its pods."""

from __future__ import annotations

from typing import Any

import pytest

from bananas.operator.conditions import merge_conditions
from bananas.operator.cronschedule import schedule_health
from bananas.operator.health import (
    Problem,
    Rollout,
    deployment_health,
    pod_problem,
    refusal_in,
)
from bananas.operator.reasons import Reason
from bananas.operator.specs import parse_cronschedule
from bananas.operator.timefmt import parse_time


def deployment(
    *,
    wanted: int = 3,
    generation: int = 4,
    observed: int = 4,
    stamp: int | None = 7,
    replicas: int | None = None,
    updated: int | None = None,
    available: int | None = None,
    progressing: tuple[str, str] | None = ("True", "NewReplicaSetAvailable"),
) -> dict[str, Any]:
    meta: dict[str, Any] = {"generation": generation}
    if stamp is not None:
        meta["annotations"] = {"bananas.dev/generation": str(stamp)}
    status: dict[str, Any] = {
        "observedGeneration": observed,
        "replicas": wanted if replicas is None else replicas,
        "updatedReplicas": wanted if updated is None else updated,
        "availableReplicas": wanted if available is None else available,
    }
    if progressing is not None:
        status["conditions"] = [
            {
                "type": "Progressing",
                "status": progressing[0],
                "reason": progressing[1],
                "message": 'ReplicaSet "email-1" has timed out progressing.',
            }
        ]
    return {"metadata": meta, "spec": {"replicas": wanted}, "status": status}


def summary(conditions: list[Any]) -> dict[str, tuple[str, str]]:
    return {str(c.type): (c.status, str(c.reason)) for c in conditions}


READY = {
    "Ready": ("True", "PodsReady"),
    "Reconciling": ("False", "Reconciled"),
    "Stalled": ("False", "Healthy"),
}


def reconciling(reason: str) -> dict[str, tuple[str, str]]:
    return {
        "Ready": ("False", reason),
        "Reconciling": ("True", reason),
        "Stalled": ("False", "Healthy"),
    }


def stalled(reason: str) -> dict[str, tuple[str, str]]:
    return {
        "Ready": ("False", reason),
        "Reconciling": ("False", "Stalled"),
        "Stalled": ("True", reason),
    }


@pytest.mark.parametrize(
    ("dep", "expected"),
    [
        (deployment(), READY),
        (deployment(stamp=None), READY),  # written by an older operator: taken at its word
        (deployment(stamp=6), reconciling("RollingOut")),  # generation 7 not applied yet
        (deployment(observed=3), reconciling("RollingOut")),  # the controller has not seen it
        (deployment(updated=1), reconciling("RollingOut")),  # 1/3 pods of the new template
        (deployment(replicas=4), reconciling("RollingOut")),  # an old pod still runs
        (deployment(available=2), reconciling("Scaling")),
        (
            deployment(updated=1, progressing=("False", "ProgressDeadlineExceeded")),
            stalled("ProgressDeadlineExceeded"),
        ),
        (
            deployment(wanted=0),
            {**READY, "Ready": ("True", "ScaledToZero")},
        ),
    ],
)
def test_deployment_health(dep: dict[str, Any], expected: dict[str, Any]) -> None:
    assert summary(deployment_health(dep, 7)) == expected


def test_a_refusal_of_this_generation_wins_over_a_healthy_deployment() -> None:
    refusal = Problem(Reason.INVALID_POD_TEMPLATE, "spec.template: Invalid value")
    found = deployment_health(deployment(), 7, refusal=refusal)
    assert summary(found) == stalled("InvalidPodTemplate")
    assert found[0].message == "spec.template: Invalid value"


def test_a_stuck_pod_is_stalled_with_its_own_message() -> None:
    stuck = Problem(Reason.IMAGE_PULL_BACK_OFF, "pod email-x: Back-off pulling image")
    found = deployment_health(deployment(updated=1), 7, pods=stuck)
    assert summary(found) == stalled("ImagePullBackOff")
    assert found[2].message == "pod email-x: Back-off pulling image"


def test_no_deployment_is_reconciling() -> None:
    assert summary(deployment_health(None, 7)) == reconciling("DeploymentMissing")


def test_rollout_reads_absent_fields_as_zero() -> None:
    view = Rollout.of({"metadata": {}, "spec": {}})
    assert (view.wanted, view.updated, view.available, view.source_generation) == (1, 0, 0, None)
    assert view.pending(1) is not None


def pod(name: str, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": status}


UNSCHEDULABLE = {
    "type": "PodScheduled",
    "status": "False",
    "reason": "Unschedulable",
    "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
}


def waiting(reason: str, message: str) -> dict[str, Any]:
    return {"name": "worker", "state": {"waiting": {"reason": reason, "message": message}}}


def test_pod_problems() -> None:
    assert pod_problem([]) is None
    assert pod_problem([pod("a", phase="Running")]) is None
    found = pod_problem([pod("b", conditions=[UNSCHEDULABLE])])
    assert found == Problem(
        Reason.UNSCHEDULABLE, "pod b: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
    )
    pulling = pod("c", containerStatuses=[waiting("ImagePullBackOff", "Back-off pulling x:9")])
    assert pod_problem([pulling]) == Problem(
        Reason.IMAGE_PULL_BACK_OFF, "pod c: Back-off pulling x:9"
    )
    # ContainerCreating is on its way, not stuck
    assert pod_problem([pod("d", containerStatuses=[waiting("ContainerCreating", "")])]) is None
    # a pod being deleted does not count
    leaving = pod("e", conditions=[UNSCHEDULABLE])
    leaving["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert pod_problem([leaving]) is None


def test_the_refusal_is_read_back_from_the_status_for_its_generation_only() -> None:
    written = merge_conditions(
        [],
        deployment_health(None, 7, refusal=Problem(Reason.INVALID_SPEC, "bad")),
        now=parse_time("2026-01-01T00:00:00Z") or pytest.fail("time"),
        generation=7,
    )
    status = {"conditions": written}
    assert refusal_in(status, 7) == Problem(Reason.INVALID_SPEC, "bad")
    assert refusal_in(status, 8) is None  # a new generation deserves a new look
    stuck = merge_conditions(
        [],
        deployment_health(deployment(), 7, pods=Problem(Reason.UNSCHEDULABLE, "no node")),
        now=parse_time("2026-01-01T00:00:00Z") or pytest.fail("time"),
        generation=7,
    )
    assert refusal_in({"conditions": stuck}, 7) is None  # a stuck pod is not a refusal


CRON = parse_cronschedule({"schedule": "*/5 * * * *", "job": "report"})


def test_schedule_health() -> None:
    scheduler = deployment(wanted=2, stamp=None)
    assert summary(schedule_health(CRON, scheduler=scheduler)) == {
        **READY,
        "Ready": ("True", "Scheduled"),
    }
    starting = deployment(wanted=2, stamp=None, available=0)
    assert summary(schedule_health(CRON, scheduler=starting)) == reconciling("SchedulerUnavailable")
    assert summary(schedule_health(CRON)) == reconciling("SchedulerUnavailable")
    down = Problem(Reason.REDIS_UNREACHABLE, "refused")
    assert summary(schedule_health(CRON, redis=down)) == reconciling("RedisUnreachable")
    refused = Problem(Reason.INVALID_TIME_ZONE, "unknown time zone 'Mars/Base'")
    assert summary(schedule_health(None, refusal=refused)) == stalled("InvalidTimeZone")
    failed = Problem(Reason.SCHEDULER_NOT_APPLIED, "forbidden")
    assert summary(schedule_health(CRON, scheduler_failed=failed)) == stalled("SchedulerNotApplied")

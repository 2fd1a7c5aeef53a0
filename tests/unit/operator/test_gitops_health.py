"""The Argo CD health script and the Flux expressions read the operator's statuses right.

The statuses are built by the same pure functions the handlers write them with
(``pool_conditions``, ``schedule_health``, ``merge_conditions``), so a change
in what the operator writes that the GitOps readers would misread fails here.
The e2e suite runs the same readers on statuses read back from an API server.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from bananas.models import Priority
from bananas.operator.autoscaler import Load
from bananas.operator.conditions import merge_conditions
from bananas.operator.cronschedule import registered_conditions, schedule_health
from bananas.operator.health import Problem
from bananas.operator.pool_status import Observation, pool_conditions
from bananas.operator.reasons import Reason
from bananas.operator.specs import parse_cronschedule
from tests.health_readers import (
    CURRENT,
    FAILED,
    GITOPS,
    IN_PROGRESS,
    LUA,
    argocd_health,
    flux_health,
    kstatus,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LOAD = Load(depth={Priority.NORMAL: 0}, in_flight=0)


def deployment(*, wanted: int = 2, available: int = 2, updated: int = 2) -> dict[str, Any]:
    return {
        "metadata": {"generation": 3, "annotations": {"bananas.dev/generation": "5"}},
        "spec": {"replicas": wanted},
        "status": {
            "observedGeneration": 3,
            "replicas": max(wanted, updated),
            "updatedReplicas": updated,
            "availableReplicas": available,
        },
    }


def pool(seen: Observation, *, generation: int = 5, observed: int | None = 5) -> dict[str, Any]:
    """A WorkerPool as the handlers leave it after a poll that saw ``seen``."""
    conditions = merge_conditions(
        [], pool_conditions(seen, 2, None), now=NOW, generation=seen.generation
    )
    status: dict[str, Any] = {"conditions": conditions}
    if observed is not None:
        status["observedGeneration"] = observed
    return {
        "apiVersion": "bananas.dev/v1alpha1",
        "kind": "WorkerPool",
        "metadata": {"name": "email", "generation": generation},
        "status": status,
    }


def seen(**fields: Any) -> Observation:
    values: dict[str, Any] = {"deployment": deployment(), "load": LOAD, "generation": 5}
    values.update(fields)
    return Observation(**values)


# (what, the pool, Argo CD's verdict, Flux's = kstatus' verdict)
CASES = [
    ("rolled out", pool(seen()), "Healthy", CURRENT),
    (
        "rolling out",
        pool(seen(deployment=deployment(updated=1, available=1))),
        "Progressing",
        IN_PROGRESS,
    ),
    (
        "image cannot be pulled",
        pool(
            seen(
                deployment=deployment(updated=1, available=1),
                pods=Problem(Reason.IMAGE_PULL_BACK_OFF, "pod email-x: Back-off pulling image"),
            )
        ),
        "Degraded",
        FAILED,
    ),
    (
        "edit refused",
        pool(seen(refusal=Problem(Reason.INVALID_POD_TEMPLATE, "spec.template: Invalid"))),
        "Degraded",
        FAILED,
    ),
    ("edit not yet looked at", pool(seen(), generation=6), "Progressing", IN_PROGRESS),
    ("no status yet", {"kind": "WorkerPool", "metadata": {"generation": 1}}, "Progressing", None),
]


@pytest.mark.parametrize(("what", "obj", "argo", "flux"), CASES, ids=[c[0] for c in CASES])
def test_workerpool(what: str, obj: dict[str, Any], argo: str, flux: str | None) -> None:
    status, message = argocd_health(obj)
    assert status == argo, message
    if flux is not None:
        assert flux_health(obj) == flux == kstatus(obj)


def test_conditions_of_an_older_generation_are_not_believed() -> None:
    # kstatus alone would call this Current (it checks status.observedGeneration only);
    # the Argo CD script and the Flux expressions also check each condition's.
    obj = pool(seen(generation=4), observed=None)
    assert argocd_health(obj)[0] == "Progressing"
    assert flux_health(obj) == IN_PROGRESS


def test_a_degraded_pool_says_why() -> None:
    stuck = Problem(Reason.UNSCHEDULABLE, "pod email-x: 0/3 nodes are available")
    status, message = argocd_health(pool(seen(pods=stuck)))
    assert (status, message) == ("Degraded", "Unschedulable: pod email-x: 0/3 nodes are available")


CRON = parse_cronschedule({"schedule": "0 3 * * *", "job": "cleanup"})
SUSPENDED = parse_cronschedule({"schedule": "0 3 * * *", "job": "cleanup", "suspend": True})
SCHEDULER = {
    "metadata": {"generation": 1},
    "spec": {"replicas": 2},
    "status": {
        "observedGeneration": 1,
        "replicas": 2,
        "updatedReplicas": 2,
        "availableReplicas": 1,
    },
}


def cron(conditions: list[Any], generation: int = 2) -> dict[str, Any]:
    return {
        "kind": "CronSchedule",
        "metadata": {"name": "nightly", "generation": generation},
        "status": {
            "observedGeneration": generation,
            "conditions": merge_conditions([], conditions, now=NOW, generation=generation),
        },
    }


@pytest.mark.parametrize(
    ("conditions", "argo", "flux"),
    [
        (
            [*registered_conditions(CRON), *schedule_health(CRON, scheduler=SCHEDULER)],
            "Healthy",
            CURRENT,
        ),
        (
            [*registered_conditions(SUSPENDED), *schedule_health(SUSPENDED, scheduler=SCHEDULER)],
            "Suspended",
            CURRENT,
        ),
        (schedule_health(CRON), "Progressing", IN_PROGRESS),
        (
            schedule_health(None, refusal=Problem(Reason.INVALID_TIME_ZONE, "Mars/Base")),
            "Degraded",
            FAILED,
        ),
    ],
)
def test_cronschedule(conditions: list[Any], argo: str, flux: str) -> None:
    obj = cron(conditions)
    assert argocd_health(obj)[0] == argo
    assert flux_health(obj) == flux == kstatus(obj)


def test_the_argocd_configmap_holds_the_script_for_both_kinds() -> None:
    config = yaml.safe_load((GITOPS / "argocd-cm-health.yaml").read_text())
    script = LUA.read_text()
    for kind in ("WorkerPool", "CronSchedule"):
        assert config["data"][f"resource.customizations.health.bananas.dev_{kind}"] == script

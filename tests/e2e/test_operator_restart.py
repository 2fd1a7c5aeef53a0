"""A restarted operator (as a new leader after a failover is) writes nothing that is there.

kopf resumes every WorkerPool and CronSchedule when it starts. With 1,000 of each
that was thousands of server-side applies, status patches and Events at once, and
the new leader's autoscalers waited behind them. Here one operator reconciles a pool
and a schedule and stops; a second one starts on the same objects: it must find the
pool's and the scheduler's objects applied as rendered (``applies_total{result=
"unchanged"}``), change no object's resourceVersion (the two resources, the
Deployments, budgets, ServiceAccount and RoleBinding, the pool's status with its
autoscaler history) and post no Event, and still apply an edit made after it started.
"""

# Fixtures are shared by importing them from sibling modules (the e2e conftest
# belongs to the harness), which ruff reads as unused imports and redefinitions.
# ruff: noqa: F401, F811

from __future__ import annotations

from collections import Counter

import pytest
from kubernetes_asyncio import client

from bananas.operator.testing import OperatorThread, event_reasons, eventually

from .controlplane import KubeCluster
from .redis_fixture import operator_redis
from .test_operator_cronschedule import Crons
from .test_operator_workerpool import (
    Pools,
    crds,
    fast_pool,
    operator_config,
    redis_secret,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


async def _versions(api: client.ApiClient, namespace: str) -> dict[str, str]:
    """resourceVersion of every object of the namespace the operator may write."""
    custom = client.CustomObjectsApi(api)
    listings = {
        "Deployment": client.AppsV1Api(api).list_namespaced_deployment(namespace),
        "PodDisruptionBudget": client.PolicyV1Api(api).list_namespaced_pod_disruption_budget(
            namespace
        ),
        "ServiceAccount": client.CoreV1Api(api).list_namespaced_service_account(namespace),
        "RoleBinding": client.RbacAuthorizationV1Api(api).list_namespaced_role_binding(namespace),
    }
    versions = {}
    for kind, listing in listings.items():
        for item in (await listing).items:
            versions[f"{kind}/{item.metadata.name}"] = item.metadata.resource_version
    for plural in ("workerpools", "cronschedules"):
        found = await custom.list_namespaced_custom_object(
            "bananas.dev", "v1alpha1", namespace, plural
        )
        for item in found["items"]:
            versions[f"{plural}/{item['metadata']['name']}"] = item["metadata"]["resourceVersion"]
    return versions


def _applies(operator: OperatorThread, result: str) -> float:
    assert operator.context is not None
    value = operator.context.metrics.registry.get_sample_value(
        "bananas_operator_applies_total", {"result": result}
    )
    return value or 0.0


async def test_a_restarted_operator_writes_nothing_that_is_already_there(
    kube_cluster_with_controllers: KubeCluster,
    namespace: str,
    crds: None,
    redis_secret: str,
    kube_api: client.ApiClient,
) -> None:
    config = operator_config(kube_cluster_with_controllers, namespace)
    pools, crons = Pools(kube_api, namespace), Crons(kube_api, namespace)
    # minReplicas 1: an idle pool at rest, whose next poll has nothing to change (at 0 its
    # cooldown may end between the two operators, and that scale-down is a real write).
    spec = fast_pool(minReplicas=1)
    with OperatorThread(config) as first:
        # The schedule first, so the pool is applied once, with its Redis's scheduler
        # there (a pool applied before it is applied again at its next poll).
        await crons.create("nightly", {"schedule": "0 3 * * *", "job": "cleanup"})
        await eventually(
            lambda: crons.condition("nightly", "SchedulerReady", "True"), what="the scheduler"
        )
        await pools.create("resumed", spec)

        async def polled() -> bool:
            return first.polls(namespace, "resumed") > 0 and bool(await pools.status("resumed"))

        await eventually(polled, what="the pool polled, with a status")
        assert _applies(first, "applied") >= 2  # the pool's group, the scheduler's group
    before = await _versions(kube_api, namespace)
    assert {"Deployment/resumed", "PodDisruptionBudget/resumed"} <= before.keys()
    assert sum(key.startswith("RoleBinding/") for key in before) >= 1
    events = Counter(await event_reasons(kube_api, namespace, "nightly"))
    status = await pools.status("resumed")

    with OperatorThread(config) as second:

        async def resumed() -> bool:
            return _applies(second, "unchanged") >= 2 and second.polls(namespace, "resumed") > 0

        await eventually(resumed, what="the second operator resumed both resources")
        assert _applies(second, "applied") == 0
        # The pool's first poll carries on its autoscaler history: its status, conditions
        # and history included, stays as it was.
        assert await _versions(kube_api, namespace) == before
        assert await pools.status("resumed") == status
        assert Counter(await event_reasons(kube_api, namespace, "nightly")) == events

        await pools.patch_spec("resumed", {"image": "bananas:e2e-2"})

        async def edited() -> bool:
            dep = await pools.deployment("resumed")
            return dep is not None and dep.spec.template.spec.containers[0].image == "bananas:e2e-2"

        await eventually(edited, what="the edit applied")
        assert _applies(second, "applied") == 1

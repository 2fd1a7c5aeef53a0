"""One cron loop per Redis, whichever came first: the pool or the namespace's schedules.

A pool's workers run their own cron loop (``ENABLE_SCHEDULER``) only while no scheduler
Deployment serves their Redis. A pool applied before its namespace's first CronSchedule
used to keep its loop until its next apply; in a fleet that was the next failover, which
then re-applied (and rolled) every such pool at once. Its poll now renders it anew when
a scheduler comes, and again when the scheduler goes.
"""

# Fixtures are shared by importing them from sibling modules (the e2e conftest
# belongs to the harness), which ruff reads as unused imports and redefinitions.
# ruff: noqa: F401, F811

from __future__ import annotations

import pytest
from kubernetes_asyncio import client

from bananas.operator.testing import OperatorThread, eventually

from .controlplane import KubeCluster
from .redis_fixture import operator_redis
from .test_operator_cronschedule import GC_TIMEOUT, Crons
from .test_operator_workerpool import (
    Pools,
    crds,
    env_of,
    fast_pool,
    operator_config,
    redis_secret,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


async def test_a_pool_hands_its_cron_loop_to_a_scheduler_that_came_later_and_back(
    kube_cluster_with_controllers: KubeCluster,
    namespace: str,
    crds: None,
    redis_secret: str,
    kube_api: client.ApiClient,
) -> None:
    config = operator_config(kube_cluster_with_controllers, namespace)
    pools, crons = Pools(kube_api, namespace), Crons(kube_api, namespace)

    async def enable_scheduler() -> str | None:
        dep = await pools.deployment("early")
        return "?" if dep is None else env_of(dep).get("ENABLE_SCHEDULER")

    with OperatorThread(config):
        await pools.create("early", fast_pool(minReplicas=1))
        await eventually(lambda: pools.deployment("early"), what="the pool's Deployment")
        assert await enable_scheduler() is None  # no scheduler: the workers' loop fires

        await crons.create("nightly", {"schedule": "0 3 * * *", "job": "cleanup"})

        async def handed_over() -> bool:
            return await enable_scheduler() == "false"

        await eventually(handed_over, what="the pool's cron loop off once a scheduler runs")

        await crons.custom.delete_namespaced_custom_object(
            "bananas.dev", "v1alpha1", namespace, "cronschedules", "nightly"
        )

        async def taken_back() -> bool:
            return await enable_scheduler() is None

        # The scheduler goes with its last CronSchedule, by the garbage collector.
        await eventually(taken_back, what="the pool's cron loop back on", timeout=GC_TIMEOUT)

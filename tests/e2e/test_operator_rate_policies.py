"""The autoscaler's rate policies against a real API server and Redis.

A scale-up rate policy caps how many pods a burst adds per period (the pause
annotation and ``fallback`` are tested in ``test_operator_workerpool.py``).
"""

# Fixtures are shared by importing them from sibling modules (the e2e conftest
# belongs to the harness), which ruff reads as unused imports and redefinitions.
# ruff: noqa: F401, F811

from __future__ import annotations

import pytest
from kubernetes_asyncio import client

from bananas import AsyncClient
from bananas.operator.testing import OperatorThread, eventually, wait_for_event

from .redis_fixture import operator_redis
from .test_operator_workerpool import (
    GROUP,
    POOLS,
    VERSION,
    Pools,
    crds,
    fast_autoscaling,
    operator,
    pools,
    put_secret,
    redis,
    redis_secret,
    route,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


async def polled(operator: OperatorThread, namespace: str, name: str, more: int) -> None:
    """Wait until the operator polled the pool ``more`` more times."""
    start = operator.polls(namespace, name)

    async def done() -> bool:
        return operator.polls(namespace, name) >= start + more

    await eventually(done, what=f"{more} more polls of {name}")


async def test_scale_up_rate_policy_caps_a_burst(
    operator: OperatorThread, pools: Pools, redis: AsyncClient, namespace: str
) -> None:
    key = route()
    await pools.create(
        "rated",
        {
            "image": "bananas:e2e",
            "app": "app.tasks",
            "routingKeys": [key],
            "autoscaling": fast_autoscaling(
                minReplicas=1,
                maxReplicas=10,
                targetJobsPerReplica=1,
                scaleUp={
                    "stabilizationWindowSeconds": 0,
                    "policies": [{"type": "Pods", "value": 2, "periodSeconds": 600}],
                },
            ),
        },
    )
    await eventually(lambda: pools.replicas("rated", 1), what="the pool at one")
    await redis.submit_many([{"name": "work", "routing_key": key} for _ in range(8)])
    await eventually(lambda: pools.replicas("rated", 3), what="1 + 2 pods in the period")
    await polled(operator, namespace, "rated", 3)
    assert await pools.replicas("rated", 3), "the period allows no more pods"
    message = await wait_for_event(pools.api, namespace, "rated", "ScaledUp")
    assert "rate-limited from 8" in message, message

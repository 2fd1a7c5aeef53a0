"""The autoscaler's KEDA-style extras against a real API server and Redis.

The pause annotation holds a pool's size whatever its queue says (and a
number sets it), ``fallback`` sizes a pool whose Redis cannot be read, and a
scale-up rate policy caps how many pods a burst adds per period.
"""

# Fixtures are shared by importing them from sibling modules (the e2e conftest
# belongs to the harness), which ruff reads as unused imports and redefinitions.
# ruff: noqa: F401, F811

from __future__ import annotations

import pytest
from kubernetes_asyncio import client

from bananas import AsyncClient
from bananas.operator.meta import PAUSE_ANNOTATION
from bananas.operator.testing import OperatorThread, eventually, wait_for_event

from .redis_fixture import operator_redis, unreachable_redis_url
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


async def annotate(pools: Pools, name: str, value: str | None) -> None:
    await pools.custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        pools.namespace,
        POOLS,
        name,
        {"metadata": {"annotations": {PAUSE_ANNOTATION: value}}},
        _content_type="application/merge-patch+json",
    )


async def polled(operator: OperatorThread, namespace: str, name: str, more: int) -> None:
    """Wait until the operator polled the pool ``more`` more times."""
    start = operator.polls(namespace, name)

    async def done() -> bool:
        return operator.polls(namespace, name) >= start + more

    await eventually(done, what=f"{more} more polls of {name}")


async def test_pause_annotation_holds_the_size(
    operator: OperatorThread, pools: Pools, redis: AsyncClient, namespace: str
) -> None:
    key = route()
    await pools.create(
        "paused",
        {
            "image": "bananas:e2e",
            "app": "app.tasks",
            "routingKeys": [key],
            "autoscaling": fast_autoscaling(),
        },
    )
    await eventually(lambda: pools.replicas("paused", 0), what="the pool at zero")
    await annotate(pools, "paused", "true")
    await redis.submit_many([{"name": "work", "routing_key": key} for _ in range(6)])
    await polled(operator, namespace, "paused", 3)
    assert await pools.replicas("paused", 0), "a paused pool kept its size"

    await annotate(pools, "paused", "2")
    await eventually(lambda: pools.replicas("paused", 2), what="the paused size")
    message = await wait_for_event(pools.api, namespace, "paused", "AutoscalingPaused")
    assert "0 -> 2 replicas" in message, message

    await annotate(pools, "paused", None)
    await eventually(lambda: pools.replicas("paused", 3), what="ceil(6 / 2) once resumed")


async def test_fallback_when_redis_is_unreachable(
    operator: OperatorThread, pools: Pools, kube_api: client.ApiClient, namespace: str
) -> None:
    await put_secret(kube_api, namespace, unreachable_redis_url(), name="nowhere")
    await pools.create(
        "fallback",
        {
            "image": "bananas:e2e",
            "app": "app.tasks",
            "redis": {"secretName": "nowhere"},
            "autoscaling": fast_autoscaling(
                minReplicas=1, fallback={"failureThreshold": 2, "replicas": 3}
            ),
        },
    )
    await eventually(lambda: pools.replicas("fallback", 3), what="the fallback size")
    message = await wait_for_event(kube_api, namespace, "fallback", "ScaledToFallback")
    assert "fallback of 3 replicas" in message, message


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

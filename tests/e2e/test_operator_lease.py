"""KubernetesLeaseElector against a real API server: acquire, renew, hand over, fence."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from kubernetes_asyncio import client

from bananas.kubelease import KubernetesLeaseElector
from bananas.operator.testing import eventually

from .controlplane import KubeCluster

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

Make = Callable[..., KubernetesLeaseElector]


@pytest.fixture
async def electors(kube_cluster: KubeCluster, namespace: str) -> AsyncIterator[Make]:
    made: list[KubernetesLeaseElector] = []

    def make(
        identity: str, duration: float = 15.0, name: str = "scheduler"
    ) -> KubernetesLeaseElector:
        elector = KubernetesLeaseElector(
            namespace, name, identity, duration, kubeconfig=str(kube_cluster.kubeconfig)
        )
        made.append(elector)
        return elector

    yield make
    for elector in made:
        await elector.close()


async def lease(api: client.ApiClient, namespace: str, name: str = "scheduler") -> client.V1Lease:
    return await client.CoordinationV1Api(api).read_namespaced_lease(name, namespace)


async def test_hand_over_on_release(
    electors: Make, kube_api: client.ApiClient, namespace: str
) -> None:
    a, b = electors("pod-a"), electors("pod-b")
    assert await a.acquire_or_renew() == 1
    assert await b.acquire_or_renew() is None
    assert await a.acquire_or_renew() == 1  # renewing keeps the token
    held = await lease(kube_api, namespace)
    assert held.spec.holder_identity == "pod-a"
    assert held.spec.lease_duration_seconds == 15

    await a.release()  # the active one stops
    released = await lease(kube_api, namespace)
    assert released.spec.holder_identity is None

    assert await b.acquire_or_renew() == 2  # a new term, a higher fencing token
    taken = await lease(kube_api, namespace)
    assert (taken.spec.holder_identity, taken.spec.lease_transitions) == ("pod-b", 2)
    assert await a.acquire_or_renew() is None


async def test_hand_over_after_expiry(
    electors: Make, kube_api: client.ApiClient, namespace: str
) -> None:
    """A leader that dies without releasing is replaced once its lease runs out."""
    a, b = electors("pod-a", duration=1, name="expiry"), electors("pod-b", 1, name="expiry")
    assert await a.acquire_or_renew() == 1
    assert await b.acquire_or_renew() is None
    # a stops renewing (crashed); b polls until the lease has expired.
    token = await eventually(b.acquire_or_renew, what="b taking over", timeout=30)
    assert token == 2
    assert (await lease(kube_api, namespace, "expiry")).spec.holder_identity == "pod-b"
    assert await a.acquire_or_renew() is None  # the old leader finds it taken


async def test_one_winner_when_standbys_race(electors: Make, namespace: str) -> None:
    racers = [electors(f"pod-{i}", name="race") for i in range(4)]
    tokens = await asyncio.gather(*(r.acquire_or_renew() for r in racers))
    winners = [t for t in tokens if t is not None]
    assert winners == [1], tokens  # optimistic concurrency: exactly one create succeeds


async def test_api_errors_do_not_raise(kube_cluster: KubeCluster) -> None:
    elector = KubernetesLeaseElector(
        "no-such-namespace-e2e", "scheduler", "pod-a", kubeconfig=str(kube_cluster.kubeconfig)
    )
    try:
        assert await elector.acquire_or_renew() is None
        await elector.release()
    finally:
        await elector.close()

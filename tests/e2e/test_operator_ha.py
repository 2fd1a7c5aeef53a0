"""Two operator replicas, one leader: the Lease decides, the standby does nothing.

Two ``python -m bananas.operator`` processes with the container's settings
(``LEADER_ELECTION=true``) run against the test control plane. The first
holds the Lease and polls the pool; the second answers its liveness probe
but runs no part of kopf (no polls in its metrics). SIGKILL the leader (no
release, as when its node dies), put work in the pool's queue at once, and
the standby scales the pool once the Lease has expired: the test measures
that time and holds it to lease duration + retry period + one poll + kopf's
start-up. Then a third replica stands by, the second gets SIGTERM, releases
the Lease before it exits, and the third takes over at its next try, without
waiting for the Lease to expire.
"""

# Fixtures are shared by importing them from sibling modules (the e2e conftest
# belongs to the harness), which ruff reads as unused imports and redefinitions.
# ruff: noqa: F401, F811

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from bananas import AsyncClient
from bananas.kubelease import KubernetesLeaseElector
from bananas.operator.config import LeaderElectionSettings
from bananas.operator.testing import OperatorThread, eventually
from tests.support.ports import free_port

from .controlplane import KubeCluster
from .redis_fixture import operator_redis
from .test_operator_workerpool import (
    Pools,
    crds,
    fast_autoscaling,
    fast_pool,
    operator_config,
    redis,
    redis_secret,
    route,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD, POLL = 4.0, 3.0, 1.0, 1.0
#: Seconds kopf may take from "leading" to its first poll: login, discovery, watch, resume.
KOPF_START = 8.0
LEASE = "bananas-operator"


def get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            text: str = response.read().decode()
            return text if response.status == 200 else None
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


@dataclass
class Replica:
    """One operator process."""

    name: str
    process: subprocess.Popen[bytes]
    metrics: int
    health: int
    log: Path

    def metric(self, family: str) -> str | None:
        text = get(f"http://127.0.0.1:{self.metrics}/metrics")
        if text is None:
            return None
        lines = [line for line in text.splitlines() if line.startswith(family)]
        return "\n".join(lines)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig: signal.Signals) -> int:
        if self.alive():
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


class Replicas:
    """Start operator replicas sharing one Lease; stop them all at the end."""

    def __init__(self, cluster: KubeCluster, namespace: str, workdir: Path) -> None:
        self.cluster, self.namespace, self.workdir = cluster, namespace, workdir
        self.started: list[Replica] = []

    def start(self, name: str) -> Replica:
        metrics, health = free_port(), free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(self.cluster.kubeconfig),
            "WATCH_NAMESPACES": self.namespace,
            "METRICS_PORT": str(metrics),
            "LIVENESS_ENDPOINT": f"http://127.0.0.1:{health}/healthz",
            "RETRY_DELAY": "1",
            "LEADER_ELECTION": "true",
            "POD_NAMESPACE": self.namespace,
            "POD_NAME": name,
            "LEASE_DURATION": str(LEASE_DURATION),
            "RENEW_DEADLINE": str(RENEW_DEADLINE),
            "RETRY_PERIOD": str(RETRY_PERIOD),
        }
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "bananas.operator"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        replica = Replica(name, process, metrics, health, log)
        self.started.append(replica)
        return replica

    def close(self) -> None:
        for replica in self.started:
            replica.stop(signal.SIGKILL)


@pytest.fixture
def replicas(
    kube_cluster_with_controllers: KubeCluster, namespace: str, crds: None, tmp_path: Path
) -> Iterator[Replicas]:
    started = Replicas(kube_cluster_with_controllers, namespace, tmp_path)
    try:
        yield started
    finally:
        started.close()


async def holder(api: client.ApiClient, namespace: str) -> str | None:
    try:
        lease = await client.CoordinationV1Api(api).read_namespaced_lease(LEASE, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return lease.spec.holder_identity or ""


async def test_the_standby_takes_over_when_the_leader_dies(
    replicas: Replicas,
    redis_secret: str,
    redis: AsyncClient,
    kube_api: client.ApiClient,
    namespace: str,
) -> None:
    pools = Pools(kube_api, namespace)
    first = replicas.start("op-a")
    await eventually(lambda: _holder_is(kube_api, namespace, "op-a"), what="op-a leading")
    second = replicas.start("op-b")

    async def standing_by() -> bool:
        assert second.alive(), second.log.read_text()
        return get(f"http://127.0.0.1:{second.health}/healthz") is not None

    await eventually(standing_by, what="the standby's liveness endpoint")

    key = route()
    await pools.create(
        "ha",
        {
            "image": "bananas:e2e",
            "app": "app.tasks",
            "routingKeys": [key],
            "autoscaling": fast_autoscaling(pollInterval=int(POLL)),
        },
    )
    await eventually(lambda: pools.replicas("ha", 0), what="the pool at zero")

    async def first_polls() -> bool:
        found = first.metric("bananas_operator_polls_total{")
        return found is not None and 'pool="ha"' in found

    await eventually(first_polls, what="the leader polling the pool")
    # The standby runs no part of kopf: it is not the leader and has polled nothing.
    assert second.metric("bananas_operator_leader ") == "bananas_operator_leader 0.0"
    assert second.metric("bananas_operator_polls_total{") == ""
    assert first.metric("bananas_operator_leader ") == "bananas_operator_leader 1.0"
    assert await holder(kube_api, namespace) == "op-a"

    first.stop(signal.SIGKILL)
    killed = time.monotonic()
    await redis.submit_many([{"name": "work", "routing_key": key} for _ in range(3)])
    await eventually(
        lambda: pools.replicas("ha", 2), what="ceil(3 / 2) = 2 replicas from op-b", timeout=60
    )
    failover = time.monotonic() - killed
    print(f"failover: leader SIGKILLed -> pool scaled by the standby in {failover:.2f}s")
    assert await holder(kube_api, namespace) == "op-b"
    assert failover <= LEASE_DURATION + RETRY_PERIOD + POLL + KOPF_START, failover

    # A graceful stop releases the Lease: the next standby does not wait for expiry.
    third = replicas.start("op-c")
    await eventually(
        lambda: _healthy(third), what="the new standby's liveness endpoint", timeout=60
    )
    assert await holder(kube_api, namespace) == "op-b"
    assert second.stop(signal.SIGTERM) == 0, second.log.read_text()[-3000:]
    exited = time.monotonic()
    # Released before the process exited, so nobody waits for the Lease to expire.
    assert await holder(kube_api, namespace) in ("", "op-c")
    await eventually(lambda: _holder_is(kube_api, namespace, "op-c"), what="op-c leading")
    handover = time.monotonic() - exited
    print(f"handover: leader exited on SIGTERM -> lease taken by the standby in {handover:.2f}s")
    assert handover < LEASE_DURATION, handover

    async def third_polls() -> bool:
        found = third.metric("bananas_operator_polls_total{")
        return found is not None and 'pool="ha"' in found

    await eventually(third_polls, what="op-c polling the pool")


async def _holder_is(api: client.ApiClient, namespace: str, name: str) -> bool:
    return await holder(api, namespace) == name


async def _healthy(replica: Replica) -> bool:
    assert replica.alive(), replica.log.read_text()
    return get(f"http://127.0.0.1:{replica.health}/healthz") is not None


async def test_a_leader_that_loses_the_lease_stops_and_comes_back(
    kube_cluster_with_controllers: KubeCluster,
    namespace: str,
    crds: None,
    redis_secret: str,
    kube_api: client.ApiClient,
) -> None:
    """Another holder renews the Lease: the operator stops polling, then leads again."""
    base = operator_config(kube_cluster_with_controllers, namespace)
    settings = LeaderElectionSettings(
        enabled=True,
        namespace=namespace,
        identity="op-0",
        lease_duration=LEASE_DURATION,
        renew_deadline=RENEW_DEADLINE,
        retry_period=RETRY_PERIOD,
    )
    pools = Pools(kube_api, namespace)
    with OperatorThread(replace(base, leader_election=settings)) as operator:
        await pools.create("term", fast_pool(pollInterval=int(POLL)))
        await eventually(lambda: _polling(operator, namespace), what="the leader polling")

        # An intruder renews the Lease as its own: op-0's renewals fail from now on.
        leases = client.CoordinationV1Api(kube_api)
        intruder = KubernetesLeaseElector(
            namespace, LEASE, "intruder", LEASE_DURATION * 10, api_client=kube_api
        )

        async def taken() -> bool:
            lease = await leases.read_namespaced_lease(LEASE, namespace)
            lease.spec.holder_identity = "intruder"
            lease.spec.lease_duration_seconds = int(LEASE_DURATION * 10)
            try:
                await leases.replace_namespaced_lease(LEASE, namespace, lease)
            except ApiException as exc:
                if exc.status == 409:  # op-0 renewed in between: read it again
                    return False
                raise
            return True

        await eventually(taken, what="the Lease taken by the intruder")
        assert await intruder.acquire_or_renew() is not None  # renews it: fresh renewTime

        async def stopped() -> bool:
            assert operator.context is not None
            registry = operator.context.metrics.registry
            return registry.get_sample_value("bananas_operator_leader") == 0.0

        await eventually(stopped, what="op-0 standing down", timeout=RENEW_DEADLINE + 10)
        polls = operator.polls(namespace, "term")
        await asyncio.sleep(POLL * 3)  # no polls while standing by: time must pass to show it
        assert operator.polls(namespace, "term") == polls

        await intruder.release()
        await eventually(lambda: _holder_is(kube_api, namespace, "op-0"), what="op-0 again")
        await eventually(
            lambda: _polls_beyond(operator, namespace, polls), what="op-0 polling again"
        )
        assert operator.alive


async def _polling(operator: OperatorThread, namespace: str) -> bool:
    return operator.polls(namespace, "term") > 0


async def _polls_beyond(operator: OperatorThread, namespace: str, count: float) -> bool:
    return operator.polls(namespace, "term") > count

"""The operator against a real API server and a real Redis: WorkerPools.

The operator runs in-process (``OperatorThread``), watching only the test's
namespace, with the kubeconfig of the e2e cluster. The cluster runs
kube-controller-manager, so Deployments get ReplicaSets and the garbage
collector removes a deleted pool's children; pods never run (no kubelet).
Everything is awaited by polling with a deadline, never by sleeping.
"""

# Fixtures are shared by importing them from sibling modules (the e2e conftest
# belongs to the harness), which ruff reads as unused imports and redefinitions.
# ruff: noqa: F401, F811

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException
from prometheus_client.parser import text_string_to_metric_families

from bananas import AsyncClient
from bananas.operator.config import OperatorConfig, SchedulerSettings
from bananas.operator.testing import (
    OperatorThread,
    apply_crds,
    event_reasons,
    eventually,
    wait_for_event,
)
from tests.health_readers import (
    CURRENT,
    FAILED,
    IN_PROGRESS,
    argocd_health,
    flux_health,
    kstatus,
)
from tests.support.servers import RedisServer

from .controlplane import REPO_ROOT, KubeCluster
from .redis_fixture import operator_redis, unreachable_redis_url

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

GROUP, VERSION = "bananas.dev", "v1alpha1"
POOLS = "workerpools"


def operator_config(cluster: KubeCluster, namespace: str) -> OperatorConfig:
    """Fast intervals, no metrics server, watching one namespace."""
    return OperatorConfig(
        namespaces=(namespace,),
        kubeconfig=str(cluster.kubeconfig),
        cron_sync_interval=1.0,
        retry_delay=1.0,
        delete_retries=1,
        metrics_port=0,
        liveness_endpoint="",
        scheduler=SchedulerSettings(image="bananas:e2e", replicas=2),
    )


@pytest.fixture
async def crds(kube_api: client.ApiClient) -> None:
    await apply_crds(kube_api, REPO_ROOT / "crds")


async def put_secret(
    api: client.ApiClient, namespace: str, url: str, name: str = "bananas-redis"
) -> None:
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name=name),
        data={"url": base64.b64encode(url.encode()).decode()},
    )
    await client.CoreV1Api(api).create_namespaced_secret(namespace, body)


@pytest.fixture
async def redis_secret(
    kube_api: client.ApiClient, namespace: str, operator_redis: RedisServer
) -> str:
    await put_secret(kube_api, namespace, operator_redis.url)
    return operator_redis.url


@pytest.fixture
async def redis(operator_redis: RedisServer) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(operator_redis.url) as c:
        yield c


@pytest.fixture
def operator(
    kube_cluster_with_controllers: KubeCluster, namespace: str, crds: None, redis_secret: str
) -> Iterator[OperatorThread]:
    with OperatorThread(operator_config(kube_cluster_with_controllers, namespace)) as op:
        yield op


class Pools:
    """WorkerPools and their Deployments in one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api)
        self.apps = client.AppsV1Api(api)

    async def create(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "WorkerPool",
            "metadata": {"name": name},
            "spec": spec,
        }
        result: dict[str, Any] = await self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, POOLS, body
        )
        return result

    async def get(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, POOLS, name
        )
        return result

    async def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        await self.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            POOLS,
            name,
            {"spec": spec},
            _content_type="application/merge-patch+json",
        )

    async def status(self, name: str) -> dict[str, Any]:
        return (await self.get(name)).get("status") or {}

    async def deployment(self, name: str) -> client.V1Deployment | None:
        try:
            return await self.apps.read_namespaced_deployment(name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def replicas(self, name: str, wanted: int) -> client.V1Deployment | None:
        dep = await self.deployment(name)
        return dep if dep is not None and dep.spec.replicas == wanted else None

    async def condition(
        self, name: str, kind: str, status: str, reason: str | None = None
    ) -> dict[str, Any] | None:
        for cond in (await self.status(name)).get("conditions") or []:
            if (
                cond.get("type") == kind
                and cond.get("status") == status
                and (reason is None or cond.get("reason") == reason)
            ):
                return dict(cond)
        return None

    async def reasons(self, name: str) -> list[str]:
        return await event_reasons(self.api, self.namespace, name)


@pytest.fixture
def pools(kube_api: client.ApiClient, namespace: str) -> Pools:
    return Pools(kube_api, namespace)


def route() -> str:
    return f"e2e-{secrets.token_hex(4)}"


def fast_autoscaling(**overrides: Any) -> dict[str, Any]:
    return {
        "minReplicas": 0,
        "maxReplicas": 5,
        "targetJobsPerReplica": 2,
        "activationJobs": 1,
        "cooldownSeconds": 2,
        "pollInterval": 1,
        "scaleUp": {"stabilizationWindowSeconds": 0},
        "scaleDown": {"stabilizationWindowSeconds": 0},
        **overrides,
    }


def fast_pool(**autoscaling: Any) -> dict[str, Any]:
    """A pool spec on a fresh routing key with :func:`fast_autoscaling`."""
    return {
        "image": "bananas:e2e",
        "app": "app.tasks",
        "routingKeys": [route()],
        "autoscaling": fast_autoscaling(**autoscaling),
    }


def env_of(dep: client.V1Deployment) -> dict[str, Any]:
    container = dep.spec.template.spec.containers[0]
    return {e.name: e.value if e.value is not None else e.value_from for e in container.env}


async def test_workerpool_becomes_a_deployment(
    operator: OperatorThread, pools: Pools, namespace: str
) -> None:
    key = route()
    spec = {
        "image": "bananas:e2e",
        "app": "app.tasks",
        "routingKeys": [key],
        "concurrency": 4,
        "gpus": 1,
        "jobTimeout": "20s",
        "terminationGracePeriodSeconds": 30,
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "nodeSelector": {"gpu": "true"},
        "autoscaling": {"minReplicas": 1, "maxReplicas": 3, "pollInterval": 1},
    }
    pool = await pools.create("gpu", spec)

    dep = await eventually(lambda: pools.deployment("gpu"), what="the pool's Deployment")
    assert dep.spec.replicas == 1
    assert dep.metadata.labels["app.kubernetes.io/managed-by"] == "bananas-operator"
    assert dep.metadata.labels["app.kubernetes.io/instance"] == "gpu"
    owner = dep.metadata.owner_references[0]
    assert (owner.kind, owner.uid, owner.controller) == (
        "WorkerPool",
        pool["metadata"]["uid"],
        True,
    )
    pod = dep.spec.template.spec
    assert pod.containers[0].resources.limits["nvidia.com/gpu"] == "1"
    assert pod.node_selector == {"gpu": "true"}
    assert pod.tolerations[0].key == "nvidia.com/gpu"
    assert pod.termination_grace_period_seconds == 30
    env = env_of(dep)
    assert env["WORKER_ROUTING_KEYS"] == key
    assert env["WORKER_CONCURRENCY"] == "4"
    assert env["SHUTDOWN_TIMEOUT"] == "25s"
    assert env["REDIS_URL"].secret_key_ref.name == "bananas-redis"

    pdb = await eventually(lambda: _pdb(pools, "gpu"), what="the PodDisruptionBudget")
    assert pdb.metadata.owner_references[0].uid == pool["metadata"]["uid"]

    await eventually(
        lambda: pools.condition("gpu", "RedisReachable", "True"), what="RedisReachable=True"
    )
    status = await eventually(
        lambda: _status_with(pools, "gpu", "queueDepth"), what="queue depth in the status"
    )
    assert status["queueDepth"] == {"high": 0, "normal": 0, "low": 0}
    assert status["desiredReplicas"] == 1
    await eventually(lambda: _generation(pools, "gpu", 1), what="observedGeneration 1")


async def deployment_gets(api: client.ApiClient) -> float:
    """How many Deployment GETs the API server has answered: its own /metrics
    (``apiserver_request_total``, verb GET, resource deployments, every other label)."""
    response = await api.call_api(
        "/metrics", "GET", auth_settings=["BearerToken"], _preload_content=False
    )
    text = (await response.read()).decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "apiserver_request_total"
                and labels.get("verb") == "GET"
                and labels.get("resource") == "deployments"
                and not labels.get("subresource")
            ):
                total += sample.value
    return total


async def test_an_idle_pool_polls_without_reading_its_deployment(
    operator: OperatorThread, pools: Pools, namespace: str, kube_api: client.ApiClient
) -> None:
    """Steady state: each poll reads the Deployment from the operator's watch, so the
    API server answers no Deployment GET however many polls run (it answered one per
    poll before the cache)."""
    await pools.create("idle", fast_pool(minReplicas=1))
    await eventually(lambda: pools.deployment("idle"), what="the pool's Deployment")
    await eventually(
        lambda: pools.condition("idle", "RedisReachable", "True"), what="the first poll"
    )
    gets, polls = await deployment_gets(kube_api), operator.polls(namespace, "idle")

    async def polled() -> bool:
        return operator.polls(namespace, "idle") >= polls + 5

    await eventually(polled, what="five more polls")
    assert await deployment_gets(kube_api) == gets
    cache = operator.context.deployments if operator.context else None
    assert cache is not None and cache.synced(namespace)
    known, dep = cache.lookup(namespace, "idle")
    assert known and dep is not None and dep["spec"]["replicas"] == 1
    # The controller's status writes reached the cache through the watch (the apply's
    # answer, put there at once, was made before the controller had looked at it).
    assert (dep.get("status") or {}).get("observedGeneration") == dep["metadata"]["generation"]


async def _pdb(pools: Pools, name: str) -> client.V1PodDisruptionBudget | None:
    try:
        return await client.PolicyV1Api(pools.api).read_namespaced_pod_disruption_budget(
            name, pools.namespace
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


async def _status_with(pools: Pools, name: str, field: str) -> dict[str, Any] | None:
    status = await pools.status(name)
    return status if field in status else None


async def test_spec_edit_updates_the_deployment(operator: OperatorThread, pools: Pools) -> None:
    await pools.create(
        "email",
        {
            "image": "bananas:1",
            "app": "app.tasks",
            "routingKeys": [route()],
            "autoscaling": {"pollInterval": 1},
        },
    )
    await eventually(lambda: pools.deployment("email"), what="the Deployment")

    await pools.patch_spec(
        "email",
        {
            "image": "bananas:2",
            "concurrency": 32,
            "gpus": 2,
            "env": [{"name": "FEATURE", "value": "on"}],
        },
    )

    async def updated() -> client.V1Deployment | None:
        dep = await pools.deployment("email")
        if dep is None or dep.spec.template.spec.containers[0].image != "bananas:2":
            return None
        return dep

    dep = await eventually(updated, what="the new image in the Deployment")
    env = env_of(dep)
    assert env["WORKER_CONCURRENCY"] == "32"
    assert env["FEATURE"] == "on"
    assert dep.spec.template.spec.containers[0].resources.limits["nvidia.com/gpu"] == "2"
    await eventually(lambda: _generation(pools, "email", 2), what="observedGeneration 2")


async def _generation(pools: Pools, name: str, generation: int) -> bool:
    return (await pools.status(name)).get("observedGeneration") == generation


async def _health(pools: Pools, name: str, generation: int) -> dict[str, Any] | None:
    """The pool once its health conditions all speak for ``generation``."""
    pool = await pools.get(name)
    conditions = {c["type"]: c for c in (pool.get("status") or {}).get("conditions") or []}
    kinds = ("Ready", "Reconciling", "Stalled")
    if all(conditions.get(k, {}).get("observedGeneration") == generation for k in kinds):
        return pool
    return None


def _state(pool: dict[str, Any]) -> dict[str, tuple[str, str]]:
    conditions = pool["status"]["conditions"]
    kinds = ("Ready", "Reconciling", "Stalled")
    return {c["type"]: (c["status"], c["reason"]) for c in conditions if c["type"] in kinds}


async def test_a_refused_edit_stays_visible_for_its_generation(
    operator: OperatorThread, pools: Pools
) -> None:
    """Ready=False/Stalled=True for the refused generation, through later polls; the GitOps
    readers (kstatus, the Argo CD Lua, the Flux expressions) agree on the real object."""
    await pools.create("edited", fast_pool())  # minReplicas 0: Ready without pods
    pool = await eventually(lambda: _health(pools, "edited", 1), what="health of generation 1")
    pool = await eventually(
        lambda: _ready_at(pools, "edited", 1), what="Ready=True (scaled to zero) at generation 1"
    )
    assert (kstatus(pool), flux_health(pool), argocd_health(pool)[0]) == (
        CURRENT,
        CURRENT,
        "Healthy",
    )

    # The schema lets any label key through; the Deployment's validation does not (422).
    await pools.patch_spec("edited", {"nodeSelector": {"not a/valid/key": "x"}})

    async def refused() -> dict[str, Any] | None:
        found = await _health(pools, "edited", 2)
        return found if found and _state(found)["Stalled"][0] == "True" else None

    pool = await eventually(refused, what="Stalled=True for generation 2")
    assert _state(pool) == {
        "Ready": ("False", "InvalidPodTemplate"),
        "Reconciling": ("False", "Stalled"),
        "Stalled": ("True", "InvalidPodTemplate"),
    }
    assert pool["status"]["observedGeneration"] == 2
    seen = operator.polls(pools.namespace, "edited")

    async def polled_twice_more() -> bool:
        return operator.polls(pools.namespace, "edited") >= seen + 2

    await eventually(polled_twice_more, what="two polls after the refusal")
    pool = await pools.get("edited")
    assert _state(pool)["Stalled"] == ("True", "InvalidPodTemplate"), "a poll overwrote it"
    assert (kstatus(pool), flux_health(pool)) == (FAILED, FAILED)
    verdict, message = argocd_health(pool)
    assert verdict == "Degraded" and "InvalidPodTemplate" in message, message

    await pools.patch_spec("edited", {"nodeSelector": None})
    pool = await eventually(lambda: _ready_at(pools, "edited", 3), what="Ready again at 3")
    assert _state(pool)["Stalled"] == ("False", "Healthy")
    assert (kstatus(pool), flux_health(pool), argocd_health(pool)[0]) == (
        CURRENT,
        CURRENT,
        "Healthy",
    )


async def test_an_undecodable_quantity_is_refused_not_retried(
    operator: OperatorThread, pools: Pools
) -> None:
    """The API answers a server-side apply of ``memory: lots`` with a 500, not a 422; it
    is still the spec's fault, and it says so instead of retrying for ever."""
    await pools.create(
        "lots",
        {
            "image": "bananas:e2e",
            "app": "app.tasks",
            "routingKeys": [route()],
            "resources": {"limits": {"memory": "lots"}},
            "autoscaling": fast_autoscaling(),
        },
    )

    async def refused() -> dict[str, Any] | None:
        found = await _health(pools, "lots", 1)
        return found if found and _state(found)["Stalled"][0] == "True" else None

    pool = await eventually(refused, what="Stalled=True for generation 1")
    assert _state(pool)["Stalled"] == ("True", "InvalidPodTemplate")
    stalled = next(c for c in pool["status"]["conditions"] if c["type"] == "Stalled")
    assert "quantities must match" in stalled["message"], stalled
    assert await pools.deployment("lots") is None


async def _ready_at(pools: Pools, name: str, generation: int) -> dict[str, Any] | None:
    pool = await _health(pools, name, generation)
    if pool is None or _state(pool).get("Ready", ("", ""))[0] != "True":
        return None
    return pool if pool["status"].get("observedGeneration") == generation else None


async def test_pods_that_never_run_keep_the_pool_reconciling(
    operator: OperatorThread, pools: Pools
) -> None:
    """No kubelet in this tier: the Deployment's pods never become available, so the pool
    is not Ready (it was, before kstatus health, as soon as the Deployment existed)."""
    await pools.create(
        "waiting",
        {
            "image": "bananas:e2e",
            "app": "app.tasks",
            "routingKeys": [route()],
            "autoscaling": {"minReplicas": 2, "maxReplicas": 2, "pollInterval": 1},
        },
    )
    pool = await eventually(lambda: _health(pools, "waiting", 1), what="health of generation 1")

    async def scaling() -> dict[str, Any] | None:
        found = await _health(pools, "waiting", 1)
        return found if found and _state(found)["Reconciling"] == ("True", "Scaling") else None

    pool = await eventually(scaling, what="Reconciling=True while pods are not available")
    assert _state(pool)["Ready"] == ("False", "Scaling")
    assert (kstatus(pool), flux_health(pool), argocd_health(pool)[0]) == (
        IN_PROGRESS,
        IN_PROGRESS,
        "Progressing",
    )


async def test_scales_up_with_queued_jobs_and_to_zero_after_cooldown(
    operator: OperatorThread, pools: Pools, redis: AsyncClient
) -> None:
    key = route()
    await pools.create(
        "burst",
        {
            "image": "bananas:e2e",
            "app": "app.tasks",
            "routingKeys": [key],
            "priorities": ["high", "normal"],
            "autoscaling": fast_autoscaling(cooldownSeconds=3),
        },
    )
    await eventually(lambda: pools.replicas("burst", 0), what="an idle pool at zero")

    # One batch, so no poll sees half of it; the low job is not served by the pool.
    batch = [{"name": "resize", "payload": {"n": i}, "routing_key": key} for i in range(7)]
    batch.append({"name": "ignored", "routing_key": key, "priority": "low"})
    jobs = (await redis.submit_many(batch))[:7]

    await eventually(lambda: pools.replicas("burst", 4), what="ceil(7 / 2) = 4 replicas")

    async def reported() -> dict[str, Any] | None:
        # The status is written just after the Deployment in the same poll.
        status = await pools.status("burst")
        return status if status.get("desiredReplicas") == 4 else None

    status = await eventually(reported, what="the poll's numbers in the status")
    assert status["queueDepth"]["normal"] == 7
    assert status["queueDepth"]["low"] == 0  # the pool serves high and normal only
    assert status["desiredReplicas"] == 4
    assert status["lastScaleTime"]
    assert status["autoscaler"]["lastActiveTime"]
    message = await wait_for_event(pools.api, pools.namespace, "burst", "ScaledUp")
    assert "0 -> 4 replicas: 7 queued + 0 in flight" in message, message

    for job in jobs:
        await redis.cancel(job, key)
    await eventually(
        lambda: pools.replicas("burst", 0), what="scale to zero after the cooldown", timeout=60
    )
    await wait_for_event(pools.api, pools.namespace, "burst", "ScaleToZero")
    await eventually(  # once the Deployment controller has seen the new size
        lambda: pools.condition("burst", "Ready", "True", "ScaledToZero"), what="Ready at zero"
    )


async def test_a_pool_at_zero_wakes_for_a_delayed_job_when_it_falls_due(
    operator: OperatorThread, pools: Pools, redis: AsyncClient
) -> None:
    """Only a running worker promotes due jobs; a pool at zero has none, so the autoscaler
    counts the jobs due within one poll (it ignored them, and the job waited for ever)."""
    key = route()
    await pools.create(
        "sleeper",
        {
            "image": "bananas:e2e",
            "app": "app.tasks",
            "routingKeys": [key],
            "autoscaling": fast_autoscaling(pollInterval=2),
        },
    )
    await eventually(lambda: pools.replicas("sleeper", 0), what="an idle pool at zero")
    await eventually(
        lambda: pools.condition("sleeper", "RedisReachable", "True"), what="a first poll"
    )
    submitted = time.monotonic()
    await redis.submit("later", routing_key=key, delay=6)
    await eventually(lambda: pools.replicas("sleeper", 1), what="a pod for the due job")
    waited = time.monotonic() - submitted
    # woken within one poll (2 s, +10% jitter) of the job falling due, not long before;
    # the slack above is for a loaded machine (the API calls of the poll and the apply)
    assert 6 - 2.2 - 1.0 <= waited <= 6 + 2.2 + 4.0, waited
    message = await wait_for_event(pools.api, pools.namespace, "sleeper", "ScaledUp")
    assert "+ 1 due" in message, message


async def test_autoscaler_memory_survives_an_operator_restart(
    kube_cluster_with_controllers: KubeCluster,
    namespace: str,
    crds: None,
    redis_secret: str,
    pools: Pools,
    redis: AsyncClient,
) -> None:
    """The scale-down window's history lives in the status: a new operator keeps honouring it."""
    key = route()
    config = operator_config(kube_cluster_with_controllers, namespace)
    autoscaling = fast_autoscaling(minReplicas=1, scaleDown={"stabilizationWindowSeconds": 600})
    with OperatorThread(config):
        await pools.create(
            "steady",
            {
                "image": "bananas:e2e",
                "app": "app.tasks",
                "routingKeys": [key],
                "autoscaling": autoscaling,
            },
        )
        jobs = [await redis.submit("work", routing_key=key) for _ in range(8)]
        await eventually(lambda: pools.replicas("steady", 4), what="4 replicas")
        for job in jobs:
            await redis.cancel(job, key)
        await eventually(
            lambda: pools.condition("steady", "Scaling", "True", "Stabilizing"),
            what="the scale-down held by the window",
        )

    with OperatorThread(config) as restarted:

        async def polled(times: int) -> bool:
            return restarted.polls(namespace, "steady") >= times

        await eventually(lambda: polled(1), what="the new operator polling the pool")
        await eventually(lambda: polled(3), what="two more polls")
    dep = await pools.deployment("steady")
    assert dep is not None and dep.spec.replicas == 4, "the window's memory was lost"
    assert "ScaledDown" not in await pools.reasons("steady")


async def test_fallback_size_while_redis_is_unreadable(
    operator: OperatorThread, pools: Pools, kube_api: client.ApiClient, namespace: str
) -> None:
    await put_secret(kube_api, namespace, unreachable_redis_url(), name="down")
    await pools.create(
        "fallback",
        {
            "image": "bananas:e2e",
            "app": "app.tasks",
            "redis": {"secretName": "down"},
            "autoscaling": fast_autoscaling(
                minReplicas=1, fallback={"failureThreshold": 2, "replicas": 3}
            ),
        },
    )
    await eventually(lambda: pools.replicas("fallback", 3), what="the fallback size, 3")
    message = await wait_for_event(pools.api, namespace, "fallback", "Fallback")
    assert "Redis unreadable for 2 polls" in message, message
    await eventually(
        lambda: pools.condition("fallback", "Scaling", "False", "Fallback"), what="Scaling/Fallback"
    )


async def test_a_paused_pool_keeps_its_size(
    operator: OperatorThread, pools: Pools, redis: AsyncClient, namespace: str
) -> None:
    key = route()
    await pools.create(
        "paused",
        {"image": "bananas:e2e", "app": "app.tasks", "routingKeys": [key],
         "autoscaling": fast_autoscaling()},
    )  # fmt: skip
    await eventually(lambda: pools.replicas("paused", 0), what="an idle pool at zero")
    await pools.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, POOLS, "paused",
        {"metadata": {"annotations": {"bananas.dev/autoscaling-paused": "true"}}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    await eventually(
        lambda: pools.condition("paused", "Scaling", "False", "Paused"), what="Scaling/Paused"
    )
    await redis.submit_many([{"name": "x", "routing_key": key} for _ in range(4)])

    async def counted() -> bool:
        return (await pools.status("paused")).get("queued") == 4

    await eventually(counted, what="the queue in the status")
    seen = operator.polls(namespace, "paused")
    await eventually(
        lambda: _at_least(operator.polls(namespace, "paused"), seen + 2), what="two more polls"
    )
    assert (await pools.deployment("paused")).spec.replicas == 0  # type: ignore[union-attr]
    await pools.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, POOLS, "paused",
        {"metadata": {"annotations": {"bananas.dev/autoscaling-paused": None}}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    await eventually(lambda: pools.replicas("paused", 2), what="scaled once unpaused")


async def test_a_paused_routing_key_backlog_does_not_scale_the_pool_up(
    operator: OperatorThread, pools: Pools, redis: AsyncClient, namespace: str
) -> None:
    """``bananas pause ROUTE``: no worker fetches the key, so its queued jobs are not
    counted; the pool stays at its minimum and its status names the paused key. A
    resume counts them again and the pool scales up."""
    key = route()
    await redis.pause(key)
    await pools.create(
        "held",
        {"image": "bananas:e2e", "app": "app.tasks", "routingKeys": [key],
         "autoscaling": fast_autoscaling(minReplicas=1)},
    )  # fmt: skip
    await eventually(lambda: pools.replicas("held", 1), what="the pool at its minimum")
    await redis.submit_many([{"name": "x", "routing_key": key} for _ in range(8)])

    async def reported() -> dict[str, Any] | None:
        status = await pools.status("held")
        waiting = [p.get("waiting") for p in status.get("pausedRoutingKeys") or []]
        return status if waiting == [8] else None

    status = await eventually(reported, what="the paused backlog in the status")
    assert status["pausedRoutingKeys"] == [
        {"routingKey": key, "priorities": ["high", "normal", "low"], "waiting": 8}
    ]
    assert status["queued"] == 0
    scaling = await eventually(
        lambda: pools.condition("held", "Scaling", "False", "QueuePaused"),
        what="Scaling/QueuePaused",
    )
    assert f"8 ready job(s) on paused routing keys not counted: {key}" in scaling["message"]
    seen = operator.polls(namespace, "held")
    await eventually(
        lambda: _at_least(operator.polls(namespace, "held"), seen + 2), what="two more polls"
    )
    assert (await pools.deployment("held")).spec.replicas == 1  # type: ignore[union-attr]
    assert "ScaledUp" not in await pools.reasons("held")

    await redis.resume(key)
    await eventually(lambda: pools.replicas("held", 4), what="ceil(8 / 2) = 4 once resumed")
    message = await wait_for_event(pools.api, pools.namespace, "held", "ScaledUp")
    assert "1 -> 4 replicas: 8 queued" in message, message

    async def cleared() -> dict[str, Any] | None:
        status = await pools.status("held")
        return status if status.get("pausedRoutingKeys") == [] else None

    await eventually(cleared, what="no paused key in the status after the resume")


async def _at_least(value: float, wanted: float) -> bool:
    return value >= wanted


async def test_unreachable_redis_is_a_condition_not_a_crash(
    operator: OperatorThread, pools: Pools, kube_api: client.ApiClient, namespace: str
) -> None:
    await put_secret(kube_api, namespace, unreachable_redis_url(), name="nowhere")
    await pools.create(
        "lost",
        {
            "image": "bananas:e2e",
            "app": "app.tasks",
            "redis": {"secretName": "nowhere"},
            "autoscaling": {"pollInterval": 1},
        },
    )
    await pools.create(
        "orphan",
        {
            "image": "bananas:e2e",
            "app": "app.tasks",
            "redis": {"secretName": "no-such-secret"},
            "autoscaling": {"pollInterval": 1},
        },
    )

    cond = await eventually(
        lambda: pools.condition("lost", "RedisReachable", "False", "RedisUnreachable"),
        what="RedisReachable=False",
    )
    assert cond["message"]
    await wait_for_event(pools.api, pools.namespace, "lost", "RedisUnreachable")
    await eventually(
        lambda: pools.condition("orphan", "RedisReachable", "False", "RedisSecretNotFound"),
        what="RedisSecretNotFound",
    )
    # The Deployments exist regardless (workers retry Redis themselves), and the
    # operator keeps serving other pools.
    assert await pools.deployment("lost") is not None
    await pools.create(
        "fine", {"image": "bananas:e2e", "app": "app.tasks", "autoscaling": {"pollInterval": 1}}
    )
    await eventually(
        lambda: pools.condition("fine", "RedisReachable", "True"),
        what="a healthy pool beside the broken ones",
    )
    assert operator.alive


async def test_survives_a_hand_edited_nonsense_status(
    operator: OperatorThread, pools: Pools
) -> None:
    await pools.create(
        "edited",
        {
            "image": "bananas:e2e",
            "app": "app.tasks",
            "routingKeys": [route()],
            "autoscaling": {"minReplicas": 1, "maxReplicas": 3, "pollInterval": 1},
        },
    )
    await eventually(
        lambda: pools.condition("edited", "RedisReachable", "True"), what="a first poll"
    )
    nonsense = {
        "desiredReplicas": 9999,
        "replicas": -4,
        "queueDepth": {"high": -1},
        "autoscaler": {"history": "banana", "lastActiveTime": 42, "junk": [1, {"x": None}]},
        "conditions": [
            {"type": "Ready", "status": "Unknown", "reason": "HandEdited"},
            {"type": "Mystery", "status": "False"},
        ],
    }
    await pools.custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        pools.namespace,
        POOLS,
        "edited",
        {"status": nonsense},
        _content_type="application/merge-patch+json",
    )

    async def repaired() -> dict[str, Any] | None:
        status = await pools.status("edited")
        history = (status.get("autoscaler") or {}).get("history")
        ok = status.get("desiredReplicas") == 1 and isinstance(history, list)
        return status if ok else None

    status = await eventually(repaired, what="the operator rewriting a sane status")
    assert isinstance(status["autoscaler"]["lastActiveTime"], str)
    dep = await pools.deployment("edited")
    assert dep is not None and dep.spec.replicas == 1
    assert operator.alive


async def test_deleting_a_pool_removes_its_children(
    operator: OperatorThread, pools: Pools, namespace: str
) -> None:
    await pools.create(
        "doomed", {"image": "bananas:e2e", "app": "app.tasks", "autoscaling": {"pollInterval": 1}}
    )
    await eventually(lambda: pools.deployment("doomed"), what="the Deployment")
    await pools.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, POOLS, "doomed")

    async def gone() -> bool:
        if await pools.deployment("doomed") is not None:
            return False
        try:
            await client.PolicyV1Api(pools.api).read_namespaced_pod_disruption_budget(
                "doomed", namespace
            )
        except ApiException as exc:
            return exc.status == 404
        return False

    # The collector learns of a new CRD at its next discovery resync (every 30 s), so
    # in a fresh control plane the first cascade of a session may take that long.
    await eventually(
        gone, what="the garbage collector removing the Deployment and PDB", timeout=120
    )

    async def pool_gone() -> bool:
        try:
            await pools.get("doomed")
        except ApiException as exc:
            return exc.status == 404
        return False

    await eventually(pool_gone, what="the WorkerPool itself")

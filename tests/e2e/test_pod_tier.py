"""The pod tier: WorkerPools whose pods run real ``bananas worker`` processes.

Locally the cluster is tier 2 plus kube-scheduler, kwok's fake nodes and the
process kubelet (``podtier.py``, ``process_kubelet.py``): the API server,
controllers, scheduler, worker and scheduler processes and Redis are real;
nodes, the container runtime and the network are simulated. Against an
existing cluster (``KUBECONFIG``, kind) the same tests run with real pods;
those that rely on the simulation skip there, saying why.

The operator runs in-process (``OperatorThread``) watching only the test's
namespace, except in the Helm test, where the chart's own operator pod runs.
"""

# Fixtures are shared by importing them from sibling modules (the e2e conftest
# belongs to the harness), which ruff reads as unused imports and redefinitions.
# ruff: noqa: F401, F811

from __future__ import annotations

import base64
import gc
import os
import secrets
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from bananas import AsyncClient
from bananas.operator.config import OperatorConfig, SchedulerSettings
from bananas.operator.meta import POOL_LABEL
from bananas.operator.testing import OperatorThread, apply_crds, eventually
from tests.support.servers import RedisServer, available_binaries, free_port

from .conftest import PodTierCluster
from .controlplane import REPO_ROOT
from .podtier import GPU_LABEL, GPU_NODE, GPU_RESOURCE, GPUS_PER_NODE, PLAIN_NODE
from .redis_fixture import operator_redis
from .test_operator_chart import helm
from .test_operator_workerpool import Pools

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

#: The Bananas image pods run (kind: the image hack/e2e-kind.sh builds and loads).
IMAGE = os.environ.get("BANANAS_E2E_IMAGE", "bananas:e2e")
#: A second tag of the same image, for rollouts.
IMAGE_NEXT = os.environ.get("BANANAS_E2E_IMAGE_NEXT", "bananas:e2e-next")
OPERATOR_IMAGE = os.environ.get("BANANAS_E2E_OPERATOR_IMAGE", "bananas-operator:e2e")
#: An image nobody can pull (locally: not a Bananas image, so kwok reports ErrImagePull).
MISSING_IMAGE = "bananas-missing:e2e"
APP = "bananas_e2e_app"


# --------------------------------------------------------------------------
# Redis as the pods and the tests see it
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class PodRedis:
    """One Redis: ``url`` for the test process, ``pod_url`` for the pods' Secret."""

    url: str
    pod_url: str


@pytest.fixture(scope="session")
def pod_redis(pod_tier: PodTierCluster, operator_redis: RedisServer) -> PodRedis:
    if pod_tier.simulated:
        return PodRedis(operator_redis.url, operator_redis.url)
    url, pod_url = (
        os.environ.get("BANANAS_E2E_REDIS_URL"),
        os.environ.get("BANANAS_E2E_POD_REDIS_URL"),
    )
    if not (url and pod_url):
        pytest.skip(
            "on an existing cluster the pods need a Redis they can reach: set "
            "BANANAS_E2E_REDIS_URL (for the tests) and BANANAS_E2E_POD_REDIS_URL (for the "
            "pods), as hack/e2e-kind.sh does"
        )
    return PodRedis(url, pod_url)


async def put_secret(api: client.ApiClient, namespace: str, url: str) -> None:
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name="bananas-redis"),
        data={"url": base64.b64encode(url.encode()).decode()},
    )
    await client.CoreV1Api(api).create_namespaced_secret(namespace, body)


@pytest.fixture
async def redis(pod_redis: PodRedis) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(pod_redis.url) as c:
        yield c


@pytest.fixture
async def crds(kube_api: client.ApiClient) -> None:
    await apply_crds(kube_api, REPO_ROOT / "crds")


def operator_config(tier: PodTierCluster, namespace: str) -> OperatorConfig:
    return OperatorConfig(
        namespaces=(namespace,),
        kubeconfig=str(tier.kubeconfig),
        cron_sync_interval=1.0,
        retry_delay=1.0,
        delete_retries=1,
        metrics_port=0,
        liveness_endpoint="",
        scheduler=SchedulerSettings(image=IMAGE, replicas=2),
    )


@pytest.fixture
def operator(
    pod_tier: PodTierCluster, namespace: str, crds: None, kube_api: client.ApiClient
) -> Iterator[OperatorThread]:
    with OperatorThread(operator_config(pod_tier, namespace)) as op:
        yield op
    # Whatever the stopped operator left unclosed is collected (and reported) here, in the
    # teardown of the test that ran it, not in some later test.
    gc.collect()


def route() -> str:
    return f"e2e-{secrets.token_hex(4)}"


def fixed(replicas: int, **spec: Any) -> dict[str, Any]:
    """A pool spec of ``replicas`` pods (the autoscaler pinned), running the e2e app."""
    body: dict[str, Any] = {
        "image": IMAGE,
        "app": APP,
        "routingKeys": [route()],
        "concurrency": 1,
        # The CRD refuses a grace period shorter than jobTimeout + 5s.
        "jobTimeout": "5s",
        "terminationGracePeriodSeconds": 10,
        "autoscaling": {"minReplicas": replicas, "maxReplicas": replicas, "pollInterval": 1},
    }
    body.update(spec)
    return body


# --------------------------------------------------------------------------
# Pods
# --------------------------------------------------------------------------


def pool_pods_selector(pool: str) -> str:
    return f"{POOL_LABEL}={pool}"


async def pods_of(api: client.ApiClient, namespace: str, pool: str) -> list[client.V1Pod]:
    found = await client.CoreV1Api(api).list_namespaced_pod(
        namespace, label_selector=pool_pods_selector(pool)
    )
    return list(found.items)


def pod_ready(pod: client.V1Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


def condition_of(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)


# --------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------


@pytest.fixture
def late_redis(pod_tier: PodTierCluster) -> Iterator[RedisServer]:
    """A Redis on a known free port, not started (the test starts it).

    Requested before ``operator``, so it is stopped after the operator is: the
    operator never polls a server that went away under it.
    """
    pod_tier.require_local("a Redis the test starts late, on a port the pods know")
    binaries = available_binaries()
    binary = binaries.get("redis") or binaries.get("valkey")
    assert binary is not None
    server = RedisServer(binary, port=free_port())
    try:
        yield server
    finally:
        server.cleanup()


async def test_workerpool_is_ready_only_once_its_pods_are(
    pod_tier: PodTierCluster,
    late_redis: RedisServer,
    operator: OperatorThread,
    kube_api: client.ApiClient,
    namespace: str,
) -> None:
    """Pods run but stay unready while their Redis is down; the pool follows them.

    A worker that cannot reach Redis at start exits (code 3) and is restarted
    with a back-off, as a kubelet would: Running, never Ready, until Redis is up.
    """
    tier = pod_tier.require_local("a Redis the test starts late, on a port the pods know")
    late = late_redis
    await put_secret(kube_api, namespace, f"redis://127.0.0.1:{late.port}/0")
    pools = Pools(kube_api, namespace)
    await pools.create("late", fixed(2))

    async def running_unready() -> list[client.V1Pod] | None:
        pods = await pods_of(kube_api, namespace, "late")
        started = [e.pod for e in tier.events(namespace) if e.event == "started"]
        ok = len(pods) == 2 and all(
            p.status.phase == "Running" and p.metadata.name in started and not pod_ready(p)
            for p in pods
        )
        return pods if ok else None

    pods = await eventually(running_unready, what="2 worker processes running, not ready")
    status = await pools.status("late")
    ready = condition_of(status, "Ready")
    assert ready is not None and ready["status"] != "True", status
    assert {p.spec.node_name for p in pods} == {PLAIN_NODE}

    started = time.monotonic()
    late.start()

    async def pool_ready() -> dict[str, Any] | None:
        return await pools.condition("late", "Ready", "True")

    await eventually(pool_ready, what="the pool Ready once Redis answers", timeout=90)
    took = time.monotonic() - started
    pods = await pods_of(kube_api, namespace, "late")
    assert len(pods) == 2 and all(pod_ready(p) for p in pods), pods
    events = tier.events(namespace)
    assert {e.pod for e in events if e.event == "ready"} == {p.metadata.name for p in pods}
    print(f"pool Ready {took:.1f}s after Redis came up")


async def test_gpu_pool_lands_on_the_gpu_node_and_waits_for_room(
    pod_tier: PodTierCluster,
    operator: OperatorThread,
    pod_redis: PodRedis,
    kube_api: client.ApiClient,
    namespace: str,
) -> None:
    """``gpus: 1`` pods go to the tainted GPU node only; one more than it has stays Pending."""
    pod_tier.require_local("the fake GPU node (nvidia.com/gpu capacity, taint and label)")
    await put_secret(kube_api, namespace, pod_redis.pod_url)
    pools = Pools(kube_api, namespace)
    gpu_spec = {
        "gpus": 1,
        "nodeSelector": {GPU_LABEL: "true"},
        "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
    }
    await pools.create("gpu", fixed(GPUS_PER_NODE + 1, **gpu_spec))
    await pools.create("cpu", fixed(2))

    async def placed() -> list[client.V1Pod] | None:
        pods = await pods_of(kube_api, namespace, "gpu")
        bound = [p for p in pods if p.spec.node_name]
        pending = [p for p in pods if not p.spec.node_name]
        if len(bound) == GPUS_PER_NODE and len(pending) == 1 and all(map(pod_ready, bound)):
            conditions = pending[0].status.conditions or []
            if any(c.type == "PodScheduled" and c.reason == "Unschedulable" for c in conditions):
                return pods
        return None

    pods = await eventually(placed, what=f"{GPUS_PER_NODE} GPU pods Ready, one unschedulable")
    assert {p.spec.node_name for p in pods if p.spec.node_name} == {GPU_NODE}
    pending = next(p for p in pods if not p.spec.node_name)
    scheduled = next(c for c in pending.status.conditions if c.type == "PodScheduled")
    assert "nvidia.com/gpu" in scheduled.message, scheduled.message
    print(f"unschedulable GPU pod: {scheduled.message}")

    async def cpu_ready() -> list[client.V1Pod] | None:
        pods = await pods_of(kube_api, namespace, "cpu")
        return pods if len(pods) == 2 and all(map(pod_ready, pods)) else None

    cpu = await eventually(cpu_ready, what="the CPU pool's pods Ready")
    assert {p.spec.node_name for p in cpu} == {PLAIN_NODE}  # the GPU node's taint keeps them off

    async def stalled() -> dict[str, Any] | None:
        return await pools.condition("gpu", "Stalled", "True", "Unschedulable")

    cond = await eventually(stalled, what="Stalled=True/Unschedulable on the GPU pool")
    assert pending.metadata.name in cond["message"] and GPU_RESOURCE in cond["message"], cond
    status = await pools.status("gpu")
    ready = condition_of(status, "Ready")
    assert ready is not None and ready["status"] == "False", status


async def test_unpullable_image_never_runs(
    pod_tier: PodTierCluster,
    operator: OperatorThread,
    pod_redis: PodRedis,
    kube_api: client.ApiClient,
    namespace: str,
) -> None:
    """A pod whose image cannot be pulled waits in ErrImagePull; the pool is not Ready."""
    await put_secret(kube_api, namespace, pod_redis.pod_url)
    pools = Pools(kube_api, namespace)
    await pools.create("nopull", fixed(1, image=MISSING_IMAGE))

    async def pull_failed() -> client.V1Pod | None:
        for pod in await pods_of(kube_api, namespace, "nopull"):
            for cs in pod.status.container_statuses or []:
                waiting = cs.state.waiting if cs.state else None
                if waiting and waiting.reason in ("ErrImagePull", "ImagePullBackOff"):
                    return pod
        return None

    pod = await eventually(pull_failed, what="the pod waiting in ErrImagePull", timeout=120)
    assert pod.status.phase == "Pending"

    async def stalled() -> dict[str, Any] | None:
        return await pools.condition("nopull", "Stalled", "True", "ErrImagePull")

    cond = await eventually(stalled, what="Stalled=True/ErrImagePull on the pool")
    assert pod.metadata.name in cond["message"] and MISSING_IMAGE in cond["message"], cond
    status = await pools.status("nopull")
    ready = condition_of(status, "Ready")
    assert ready is not None and ready["status"] == "False", status
    print(f"Stalled: {cond['message']}")
    if pod_tier.local is not None:
        assert not [e for e in pod_tier.local.events(namespace) if e.event == "started"]


async def test_helm_install_wait_then_scheduler_pods_elect_a_leader_and_fire(
    pod_tier: PodTierCluster,
    pod_redis: PodRedis,
    redis: AsyncClient,
    crds: None,
    kube_api: client.ApiClient,
    namespace: str,
) -> None:
    """The chart's operator pod, then the scheduler pods it makes, all under their own RBAC."""
    await put_secret(kube_api, namespace, pod_redis.pod_url)
    release = f"b{secrets.token_hex(3)}"
    repository, _, tag = OPERATOR_IMAGE.rpartition(":")
    sched_repository, _, sched_tag = IMAGE.rpartition(":")
    values = {
        "crds.create": "false",  # the session's CRDs are installed already
        "operator.image.repository": repository,
        "operator.image.tag": tag,
        "operator.scheduler.image.repository": sched_repository,
        "operator.scheduler.image.tag": sched_tag,
        "operator.watchNamespaces": "{" + namespace + "}",
        "operator.cronSyncInterval": "1",
        "operator.retryDelay": "1",
    }
    args = [helm(), "install", release, str(REPO_ROOT / "charts" / "bananas")]
    args += ["--namespace", namespace, "--kubeconfig", str(pod_tier.kubeconfig)]
    args += ["--wait", "--timeout", "180s"]
    for key, value in values.items():
        args += ["--set", f"{key}={value}"]
    started = time.monotonic()
    result = subprocess.run(args, capture_output=True, text=True, timeout=240)
    took = time.monotonic() - started
    try:
        assert result.returncode == 0, result.stderr + result.stdout
        print(f"helm install --wait took {took:.1f}s")
        operator_pods = await client.CoreV1Api(kube_api).list_namespaced_pod(
            namespace, label_selector="app.kubernetes.io/component=operator"
        )
        assert [p for p in operator_pods.items if pod_ready(p)], operator_pods.items

        key = route()
        body = {
            "apiVersion": "bananas.dev/v1alpha1",
            "kind": "CronSchedule",
            "metadata": {"name": "tick"},
            "spec": {"schedule": "* * * * *", "job": "tick", "routingKey": key},
        }
        await client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
            "bananas.dev", "v1alpha1", namespace, "cronschedules", body
        )
        sid = f"{namespace}.tick"

        async def leader() -> tuple[str, list[str]] | None:
            pods = await client.CoreV1Api(kube_api).list_namespaced_pod(
                namespace, label_selector="app.kubernetes.io/component=scheduler"
            )
            names = [p.metadata.name for p in pods.items if pod_ready(p)]
            try:
                lease = await client.CoordinationV1Api(kube_api).read_namespaced_lease(
                    "bananas-scheduler", namespace
                )
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise
            holder = lease.spec.holder_identity
            return (holder, names) if len(names) == 2 and holder in names else None

        holder, names = await eventually(
            leader, what="two scheduler pods, one holding the Lease", timeout=120
        )

        async def fired() -> Any:
            state = await redis.schedule_status(sid)
            return state if state is not None and state.run_count >= 1 else None

        state = await eventually(
            fired, what="the CronSchedule fired by a scheduler pod", timeout=90
        )
        assert state.run_count == 1
        lease = await client.CoordinationV1Api(kube_api).read_namespaced_lease(
            "bananas-scheduler", namespace
        )
        assert lease.spec.holder_identity == holder  # still the one leader
        if pod_tier.local is not None:
            started = [e.raw for e in pod_tier.local.events(namespace) if e.event == "started"]
            accounts = {e["pod"]: e.get("service_account") for e in started}
            for name in names:
                assert accounts[name] and accounts[name] != "default", accounts
        print(f"leader {holder} of {names}; fired job {state.last_job_id}")
    finally:
        subprocess.run(
            [helm(), "uninstall", release, "--namespace", namespace, "--kubeconfig",
             str(pod_tier.kubeconfig), "--wait", "--timeout", "60s"],
            capture_output=True,
            timeout=90,
        )  # fmt: skip


# --------------------------------------------------------------------------
# Busy pods: scale-down and rollouts with long jobs, counted in a Redis ledger
# --------------------------------------------------------------------------


@dataclass
class Ledger:
    """What ``bananas_e2e_app.ledger_sleep`` wrote: starts and finishes per job, and where."""

    name: str
    starts: dict[str, int]
    finishes: dict[str, int]
    events: list[dict[str, Any]]

    @classmethod
    async def read(cls, redis_url: str, name: str) -> Ledger:
        import json

        import redis.asyncio as aioredis

        r = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            starts = {k: int(v) for k, v in (await r.hgetall(f"{name}:starts")).items()}
            finishes = {k: int(v) for k, v in (await r.hgetall(f"{name}:finishes")).items()}
            events = [json.loads(e) for e in await r.lrange(f"{name}:events", 0, -1)]
        finally:
            await r.aclose()
        return cls(name, starts, finishes, events)

    def interrupted(self) -> list[str]:
        """Jobs started more often than finished (cut short at least once)."""
        return [job for job, n in self.starts.items() if n > self.finishes.get(job, 0)]

    def run_twice(self) -> list[str]:
        return [job for job, n in self.starts.items() if n > 1]

    def pods_of(self, jobs: list[str]) -> set[str]:
        return {e["pod"] for e in self.events if e["event"] == "start" and e["job"] in jobs}


def same_redis(pod_redis: PodRedis) -> None:
    """The in-process operator reads the queue through the pods' Secret: it needs their URL."""
    if pod_redis.url != pod_redis.pod_url:
        pytest.skip(
            "the in-process operator reads queue depth from the Secret's URL, which only the "
            "pods can reach on this cluster"
        )


async def submit_ledger_jobs(
    redis: AsyncClient, key: str, ledger: str, seconds: list[float]
) -> list[str]:
    return list(
        await redis.submit_many(
            [
                {
                    "name": "ledger_sleep",
                    "payload": {"ledger": ledger, "seconds": s},
                    "routing_key": key,
                    "max_retries": 3,
                }
                for s in seconds
            ]
        )
    )


async def deleted_pods(api: client.ApiClient, namespace: str, pool: str) -> list[str]:
    """Names of the pool's pods being deleted right now."""
    return [
        p.metadata.name
        for p in await pods_of(api, namespace, pool)
        if p.metadata.deletion_timestamp is not None
    ]


async def test_scale_down_with_long_jobs_removes_only_idle_pods(
    pod_tier: PodTierCluster,
    operator: OperatorThread,
    pod_redis: PodRedis,
    redis: AsyncClient,
    kube_api: client.ApiClient,
    namespace: str,
) -> None:
    """4 pods, 2 of them busy with long jobs, the queue drains: only idle pods go."""
    same_redis(pod_redis)
    await put_secret(kube_api, namespace, pod_redis.pod_url)
    pools = Pools(kube_api, namespace)
    spec = fixed(4, jobTimeout="40s", terminationGracePeriodSeconds=45)
    key = spec["routingKeys"][0]
    await pools.create("busy", spec)

    async def all_ready() -> list[client.V1Pod] | None:
        pods = await pods_of(kube_api, namespace, "busy")
        return pods if len(pods) == 4 and all(map(pod_ready, pods)) else None

    before = {p.metadata.name for p in await eventually(all_ready, what="4 pods Ready")}
    ledger = f"e2e:ledger:{secrets.token_hex(4)}"
    long_jobs = await submit_ledger_jobs(redis, key, ledger, [25.0, 25.0])
    short_jobs = await submit_ledger_jobs(redis, key, ledger, [0.5, 0.5])

    async def long_running() -> Ledger | None:
        book = await Ledger.read(pod_redis.url, ledger)
        done = all(book.finishes.get(j) for j in short_jobs)
        return book if done and all(book.starts.get(j) for j in long_jobs) else None

    book = await eventually(long_running, what="short jobs done, long jobs running")
    busy = book.pods_of(long_jobs)
    assert len(busy) == 2, book.events
    # The queue is empty and 2 jobs run: let the autoscaler shrink the pool.
    await pools.patch_spec(
        "busy",
        {
            "autoscaling": {
                "minReplicas": 0,
                "maxReplicas": 4,
                "targetJobsPerReplica": 1,
                "activationJobs": 1,
                "cooldownSeconds": 1,
                "pollInterval": 1,
                "scaleDown": {"stabilizationWindowSeconds": 0},
            }
        },
    )
    removed_while_busy: list[str] = []

    async def shrunk_to_busy() -> list[client.V1Pod] | None:
        removed_while_busy.extend(
            n
            for n in await deleted_pods(kube_api, namespace, "busy")
            if n not in removed_while_busy
        )
        if cut := set(removed_while_busy) & busy:
            status = await pools.status("busy")
            raise AssertionError(f"busy pod(s) {sorted(cut)} asked to stop mid-job: {status}")
        pods = await pods_of(kube_api, namespace, "busy")
        live = [p for p in pods if p.metadata.deletion_timestamp is None]
        return live if len(pods) == 2 else None

    started = time.monotonic()
    survivors = await eventually(
        shrunk_to_busy, what="the pool down to its 2 busy pods", timeout=60
    )
    took = time.monotonic() - started
    assert {p.metadata.name for p in survivors} == busy
    assert not set(removed_while_busy) & busy, removed_while_busy

    async def all_done() -> Ledger | None:
        book = await Ledger.read(pod_redis.url, ledger)
        return book if all(book.finishes.get(j) for j in long_jobs + short_jobs) else None

    book = await eventually(all_done, what="the long jobs finished", timeout=90)
    assert book.interrupted() == [] and book.run_twice() == [], book.events
    removed = sorted(before - busy)
    if pod_tier.local is not None:
        stopped = [e.pod for e in pod_tier.local.events(namespace) if e.event == "sigterm"]
        assert set(stopped) == set(removed), stopped

    async def empty() -> bool:
        return not await pods_of(kube_api, namespace, "busy")

    await eventually(empty, what="the pool at zero once its jobs are done", timeout=90)
    book = await Ledger.read(pod_redis.url, ledger)
    assert book.interrupted() == [] and book.run_twice() == [], book.events
    if pod_tier.local is not None:
        events = pod_tier.local.events(namespace)
        assert not [e.raw for e in events if e.event == "sigkill"], events
    print(
        f"scale-down 4->2 in {took:.1f}s; removed (idle) {removed}; kept (busy) {sorted(busy)} "
        f"until their jobs ended, then 2->0; jobs interrupted: {len(book.interrupted())}, "
        f"run twice: {len(book.run_twice())}"
    )


async def test_image_rollout_with_long_jobs(
    pod_tier: PodTierCluster,
    operator: OperatorThread,
    pod_redis: PodRedis,
    redis: AsyncClient,
    kube_api: client.ApiClient,
    namespace: str,
) -> None:
    """An image edit rolls 3 pods, 2 busy: Reconciling until done, no job cut short or re-run."""
    same_redis(pod_redis)
    await put_secret(kube_api, namespace, pod_redis.pod_url)
    pools = Pools(kube_api, namespace)
    spec = fixed(3, jobTimeout="30s", terminationGracePeriodSeconds=35)
    key = spec["routingKeys"][0]
    await pools.create("roll", spec)
    await eventually(lambda: pools.condition("roll", "Ready", "True"), what="the pool Ready")
    old = {p.metadata.name for p in await pods_of(kube_api, namespace, "roll")}
    ledger = f"e2e:ledger:{secrets.token_hex(4)}"
    jobs = await submit_ledger_jobs(redis, key, ledger, [12.0, 12.0])

    async def running() -> Ledger | None:
        book = await Ledger.read(pod_redis.url, ledger)
        return book if all(book.starts.get(j) for j in jobs) else None

    book = await eventually(running, what="two long jobs running")
    busy = book.pods_of(jobs)
    generation = (await pools.get("roll"))["metadata"]["generation"]
    await pools.patch_spec("roll", {"image": IMAGE_NEXT})
    started = time.monotonic()

    async def reconciling() -> dict[str, Any] | None:
        status = await pools.status("roll")
        cond = condition_of(status, "Reconciling")
        ready = condition_of(status, "Ready")
        if cond and cond["status"] == "True" and ready and ready["status"] == "False":
            return cond
        return None

    cond = await eventually(reconciling, what="Reconciling=True during the rollout")
    assert cond["observedGeneration"] == generation + 1, cond

    async def rolled_out() -> list[client.V1Pod] | None:
        status = await pools.status("roll")
        ready = condition_of(status, "Ready")
        pods = await pods_of(kube_api, namespace, "roll")
        new = [p for p in pods if p.spec.containers[0].image == IMAGE_NEXT]
        if ready and ready["status"] == "True" and len(pods) == 3 and len(new) == 3:
            return new
        return None

    await eventually(rolled_out, what="Ready=True on 3 pods of the new image", timeout=150)
    took = time.monotonic() - started
    status = await pools.status("roll")
    assert condition_of(status, "Reconciling")["status"] == "False", status  # type: ignore[index]
    book = await Ledger.read(pod_redis.url, ledger)
    assert all(book.finishes.get(j) for j in jobs), book.events
    assert book.interrupted() == [] and book.run_twice() == [], book.events
    print(
        f"rollout of 3 pods ({len(busy)} busy) in {took:.1f}s; replaced {sorted(old)}; "
        f"jobs interrupted: {len(book.interrupted())}, run twice: {len(book.run_twice())}"
    )

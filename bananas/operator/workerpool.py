"""WorkerPool reconciliation, as pure functions: a spec in, Kubernetes objects out.

A WorkerPool becomes a Deployment of ``bananas worker`` pods plus a
PodDisruptionBudget, both named after the pool, both owned by it (so deleting
the pool lets the garbage collector remove them). The handlers server-side
apply whatever these functions return, so the functions describe the whole
desired object and never look at what is in the cluster.

The pod template carries the pool's settings as the worker's environment
(REDIS_URL from the referenced Secret, BANANAS_APP, WORKER_ROUTING_KEYS, ...).
The user's own ``env`` comes last, so it can override any of them. The drain
time the worker gets on SIGTERM (SHUTDOWN_TIMEOUT) follows the pod's
``terminationGracePeriodSeconds``, a few seconds below it, so a worker finishes
or releases its jobs before the kubelet's SIGKILL.

The replica count is an input: it is the autoscaler's last decision, so that
re-rendering the pool after an edit never undoes a scale.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from bananas.config import EnvValue, parse_duration, render_env
from bananas.keys import DEFAULT_PREFIX
from bananas.operator.meta import (
    COMPONENT_WORKER,
    GENERATION_ANNOTATION,
    POOL_LABEL,
    JsonObject,
    labels,
    owner_reference,
    selector_labels,
)
from bananas.operator.pod_env import from_secret, pod_identity
from bananas.operator.specs import WorkerPoolSpec

APP_NAME = "bananas-worker"
CONTAINER_NAME = "worker"
METRICS_PORT = 8000
GPU_RESOURCE = "nvidia.com/gpu"
#: Seconds the drain time is kept below the grace period when the grace period allows it.
DRAIN_MARGIN = 5
#: Seconds the default grace period adds to ``jobTimeout``: the drain margin, plus time to
#: finish a job that started just before SIGTERM and to release what is left.
GRACE_MARGIN = 15
#: Seconds without progress before a rollout is reported stuck, beyond the grace period
#: (a draining pod may hold its place, and a GPU, for the whole grace period).
PROGRESS_DEADLINE_MARGIN = 600
REVISION_HISTORY = 5
#: The operator's own volumes in the pod (the user's ``volumes`` may not reuse the names).
TMP_VOLUME = "tmp"
SHM_VOLUME = "dshm"

RESTRICTED_CONTAINER_SECURITY: JsonObject = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_POD_SECURITY: JsonObject = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "fsGroup": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def drain_seconds(grace_period: int) -> int:
    """SHUTDOWN_TIMEOUT for a pod with this ``terminationGracePeriodSeconds``.

    ``DRAIN_MARGIN`` seconds below the grace period, leaving the worker time to
    release unfinished jobs and exit; for short grace periods, two thirds of it
    (at least one second).
    """
    if grace_period > 3 * DRAIN_MARGIN:
        return grace_period - DRAIN_MARGIN
    return max(1, (grace_period * 2) // 3)


def grace_period(spec: WorkerPoolSpec) -> int:
    """The pods' ``terminationGracePeriodSeconds``: the spec's, else ``jobTimeout`` + 15 s.

    So that a rollout's or a scale-down's SIGTERM lets a running job finish: the
    worker's drain (SHUTDOWN_TIMEOUT, :func:`drain_seconds`) then covers the
    pool's job timeout. The CRD refuses an explicit grace period shorter than
    ``jobTimeout`` + 5 s.
    """
    if spec.termination_grace_period_seconds is not None:
        return spec.termination_grace_period_seconds
    return math.ceil(parse_duration(spec.job_timeout)) + GRACE_MARGIN


def pool_labels(name: str) -> dict[str, str]:
    """Labels of a pool's Deployment, PodDisruptionBudget and pods."""
    return {**labels(APP_NAME, name, COMPONENT_WORKER), POOL_LABEL: name}


def pool_selector(name: str) -> dict[str, str]:
    """The Deployment selector of a pool (immutable)."""
    return selector_labels(APP_NAME, name, COMPONENT_WORKER)


def worker_env(spec: WorkerPoolSpec, *, cron_elsewhere: bool = False) -> list[JsonObject]:
    """The worker container's environment: the pool's settings, then the user's ``env``.

    ``cron_elsewhere``: a scheduler Deployment fires this Redis's schedules, so the
    workers' own Redis-elected cron loop is switched off (``ENABLE_SCHEDULER=false``):
    one firing loop per Redis.
    """
    values: dict[str, EnvValue] = {}
    if spec.redis.prefix != DEFAULT_PREFIX:
        values["prefix"] = spec.redis.prefix
    if cron_elsewhere:
        values["enable_scheduler"] = False
    settings = render_env(
        {
            "app": spec.app,
            "routing_keys": spec.routing_keys,
            "priorities": spec.priorities,
            "concurrency": spec.concurrency,
            "job_timeout": spec.job_timeout,
            "max_retries": spec.max_retries,
            "shutdown_timeout": f"{drain_seconds(grace_period(spec))}s",
            "log_format": "json",
            "log_level": spec.log_level,
            "metrics_port": METRICS_PORT,
            **values,
        }
    )
    env: list[JsonObject] = [from_secret("redis_url", spec.redis), *settings, *pod_identity()]
    ours = {item["name"] for item in env}
    user = [dict(item) for item in spec.env]
    # Kubernetes keeps the last of two equal names; drop ours so the user's wins cleanly.
    overridden = {item.get("name") for item in user} & ours
    return [item for item in env if item["name"] not in overridden] + user


def worker_resources(spec: WorkerPoolSpec) -> JsonObject:
    """The container's resources, with ``gpus`` added as the ``nvidia.com/gpu`` limit."""
    resources: JsonObject = {key: dict(value) for key, value in spec.resources.items()}
    if spec.gpus > 0:
        limits = resources.setdefault("limits", {})
        limits[GPU_RESOURCE] = spec.gpus
    return resources


def _probe(path: str, period: int, failures: int) -> JsonObject:
    return {
        "httpGet": {"path": path, "port": "metrics"},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": 2,
    }


def worker_container(spec: WorkerPoolSpec, *, cron_elsewhere: bool = False) -> JsonObject:
    """The ``worker`` container of a pool's pods (``cron_elsewhere``: see :func:`worker_env`)."""
    container: JsonObject = {
        "name": CONTAINER_NAME,
        "image": spec.image,
        # command, not just args: any image with bananas installed works, whatever its entrypoint.
        "command": ["bananas"],
        "args": ["worker"],
        "env": worker_env(spec, cron_elsewhere=cron_elsewhere),
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
        "livenessProbe": _probe("/healthz", 10, 3),
        "readinessProbe": _probe("/readyz", 5, 2),
        "startupProbe": _probe("/healthz", 2, 30),
        "resources": worker_resources(spec),
        "securityContext": RESTRICTED_CONTAINER_SECURITY,
        "volumeMounts": _mounts(spec),
    }
    if spec.image_pull_policy:
        container["imagePullPolicy"] = spec.image_pull_policy
    if spec.env_from:
        container["envFrom"] = [dict(item) for item in spec.env_from]
    return container


def _mounts(spec: WorkerPoolSpec) -> list[JsonObject]:
    mounts: list[JsonObject] = [{"name": TMP_VOLUME, "mountPath": "/tmp"}]
    if spec.shm_size is not None:
        mounts.append({"name": SHM_VOLUME, "mountPath": "/dev/shm"})
    return mounts + [dict(m) for m in spec.volume_mounts]


def _volumes(spec: WorkerPoolSpec) -> list[JsonObject]:
    volumes: list[JsonObject] = [{"name": TMP_VOLUME, "emptyDir": {}}]
    if spec.shm_size is not None:
        # A memory-backed emptyDir: PyTorch's DataLoader workers share tensors through
        # /dev/shm, which container runtimes cap at 64 MiB. It counts against the
        # container's memory limit.
        shm = {"medium": "Memory", "sizeLimit": spec.shm_size}
        volumes.append({"name": SHM_VOLUME, "emptyDir": shm})
    return volumes + [dict(v) for v in spec.volumes]


def topology_spread(spec: WorkerPoolSpec, name: str) -> list[JsonObject]:
    """The pool's ``topologySpreadConstraints``; one without a ``labelSelector`` spreads
    the pool's own pods (its selector labels are filled in)."""
    constraints = []
    for item in spec.topology_spread_constraints:
        constraint = dict(item)
        constraint.setdefault("labelSelector", {"matchLabels": pool_selector(name)})
        constraints.append(constraint)
    return constraints


def _pod_spec(spec: WorkerPoolSpec, name: str, cron_elsewhere: bool) -> JsonObject:
    pod: JsonObject = {
        "containers": [worker_container(spec, cron_elsewhere=cron_elsewhere)],
        "terminationGracePeriodSeconds": grace_period(spec),
        "securityContext": RESTRICTED_POD_SECURITY,
        "volumes": _volumes(spec),
        "enableServiceLinks": False,
    }
    optional: dict[str, Any] = {
        "nodeSelector": dict(spec.node_selector),
        "tolerations": [dict(t) for t in spec.tolerations],
        "affinity": spec.affinity,
        "priorityClassName": spec.priority_class_name,
        "serviceAccountName": spec.service_account_name,
        "imagePullSecrets": [dict(s) for s in spec.image_pull_secrets],
        "runtimeClassName": spec.runtime_class_name,
        "topologySpreadConstraints": topology_spread(spec, name),
    }
    pod.update({key: value for key, value in optional.items() if value})
    return pod


def rollout_strategy(spec: WorkerPoolSpec) -> JsonObject:
    """How a new pod template rolls out.

    CPU pools surge (new pods first, capacity never drops); GPU pools replace one
    pod at a time instead, because a surge pod would need a spare GPU that a
    right-sized GPU node pool does not have.
    """
    rolling: JsonObject
    if spec.gpus > 0:
        rolling = {"maxSurge": 0, "maxUnavailable": 1}
    else:
        rolling = {"maxSurge": "25%", "maxUnavailable": 0}
    return {"type": "RollingUpdate", "rollingUpdate": rolling}


def render_deployment(
    pool: Mapping[str, Any],
    spec: WorkerPoolSpec,
    replicas: int,
    *,
    cron_elsewhere: bool = False,
) -> JsonObject:
    """The Deployment of ``pool`` (its body, for name, namespace and uid) at ``replicas``.

    ``cron_elsewhere``: a scheduler Deployment serves the pool's Redis (see
    :func:`worker_env`).

    The Deployment's metadata carries ``bananas.dev/generation``: the pool's
    generation it renders (:mod:`~bananas.operator.health` reads it back).
    """
    name = pool["metadata"]["name"]
    pod_labels = pool_labels(name)
    annotations = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(METRICS_PORT),
        **spec.pod_annotations,
    }
    metadata: JsonObject = {
        "name": name,
        "namespace": pool["metadata"]["namespace"],
        "labels": pod_labels,
        "ownerReferences": [owner_reference(pool)],
    }
    generation = pool["metadata"].get("generation")
    if isinstance(generation, int):
        metadata["annotations"] = {GENERATION_ANNOTATION: str(generation)}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": REVISION_HISTORY,
            "progressDeadlineSeconds": grace_period(spec) + PROGRESS_DEADLINE_MARGIN,
            "selector": {"matchLabels": pool_selector(name)},
            "strategy": rollout_strategy(spec),
            "template": {
                "metadata": {"labels": pod_labels, "annotations": annotations},
                "spec": _pod_spec(spec, name, cron_elsewhere),
            },
        },
    }


def render_pdb(pool: Mapping[str, Any], spec: WorkerPoolSpec) -> JsonObject:
    """The PodDisruptionBudget of ``pool``: drains take at most ``maxUnavailable`` pods."""
    name = pool["metadata"]["name"]
    max_unavailable = spec.pod_disruption_budget.get("maxUnavailable", 1)
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": name,
            "namespace": pool["metadata"]["namespace"],
            "labels": pool_labels(name),
            "ownerReferences": [owner_reference(pool)],
        },
        "spec": {
            "maxUnavailable": max_unavailable,
            "selector": {"matchLabels": pool_selector(name)},
            # Pods that are not Ready (all of them, while Redis is down) may always be
            # evicted: a budget that counts them would block every node drain.
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def initial_replicas(spec: WorkerPoolSpec, status: Any) -> int:
    """The size to render before the autoscaler has spoken: its last word, within bounds.

    Reads ``status.desiredReplicas`` when it is a sane number (a status can be
    edited by hand), else starts at ``minReplicas``.
    """
    policy = spec.autoscaling
    desired = status.get("desiredReplicas") if isinstance(status, Mapping) else None
    if not isinstance(desired, int) or isinstance(desired, bool) or desired < 0:
        desired = policy.min_replicas
    return max(policy.min_replicas, min(policy.max_replicas, desired))

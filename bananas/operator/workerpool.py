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

from collections.abc import Mapping
from typing import Any

from bananas.config import render_env
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
REVISION_HISTORY = 5

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


def pool_labels(name: str) -> dict[str, str]:
    """Labels of a pool's Deployment, PodDisruptionBudget and pods."""
    return {**labels(APP_NAME, name, COMPONENT_WORKER), POOL_LABEL: name}


def pool_selector(name: str) -> dict[str, str]:
    """The Deployment selector of a pool (immutable)."""
    return selector_labels(APP_NAME, name, COMPONENT_WORKER)


def worker_env(spec: WorkerPoolSpec) -> list[JsonObject]:
    """The worker container's environment: the pool's settings, then the user's ``env``."""
    settings = render_env(
        {
            "app": spec.app,
            "routing_keys": spec.routing_keys,
            "priorities": spec.priorities,
            "concurrency": spec.concurrency,
            "job_timeout": spec.job_timeout,
            "max_retries": spec.max_retries,
            "shutdown_timeout": f"{drain_seconds(spec.termination_grace_period_seconds)}s",
            "log_format": "json",
            "log_level": spec.log_level,
            "metrics_port": METRICS_PORT,
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


def worker_container(spec: WorkerPoolSpec) -> JsonObject:
    """The ``worker`` container of a pool's pods."""
    container: JsonObject = {
        "name": CONTAINER_NAME,
        "image": spec.image,
        # command, not just args: any image with bananas installed works, whatever its entrypoint.
        "command": ["bananas"],
        "args": ["worker"],
        "env": worker_env(spec),
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
        "livenessProbe": _probe("/healthz", 10, 3),
        "readinessProbe": _probe("/readyz", 5, 2),
        "startupProbe": _probe("/healthz", 2, 30),
        "resources": worker_resources(spec),
        "securityContext": RESTRICTED_CONTAINER_SECURITY,
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    if spec.image_pull_policy:
        container["imagePullPolicy"] = spec.image_pull_policy
    if spec.env_from:
        container["envFrom"] = [dict(item) for item in spec.env_from]
    return container


def _pod_spec(spec: WorkerPoolSpec) -> JsonObject:
    pod: JsonObject = {
        "containers": [worker_container(spec)],
        "terminationGracePeriodSeconds": spec.termination_grace_period_seconds,
        "securityContext": RESTRICTED_POD_SECURITY,
        "volumes": [{"name": "tmp", "emptyDir": {}}],
        "enableServiceLinks": False,
    }
    optional: dict[str, Any] = {
        "nodeSelector": dict(spec.node_selector),
        "tolerations": [dict(t) for t in spec.tolerations],
        "affinity": spec.affinity,
        "priorityClassName": spec.priority_class_name,
        "serviceAccountName": spec.service_account_name,
        "imagePullSecrets": [dict(s) for s in spec.image_pull_secrets],
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


def render_deployment(pool: Mapping[str, Any], spec: WorkerPoolSpec, replicas: int) -> JsonObject:
    """The Deployment of ``pool`` (its body, for name, namespace and uid) at ``replicas``.

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
            "selector": {"matchLabels": pool_selector(name)},
            "strategy": rollout_strategy(spec),
            "template": {
                "metadata": {"labels": pod_labels, "annotations": annotations},
                "spec": _pod_spec(spec),
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

"""The scheduler Deployment the operator runs for CronSchedules, as pure functions.

CronSchedules are fired by ``bananas scheduler``. The operator runs one
scheduler Deployment per namespace and Redis (a namespace whose schedules all
use the Secret ``bananas-redis`` gets ``bananas-scheduler``), with two replicas
by default: one leads, elected through a ``coordination.k8s.io/v1`` Lease named
after the Deployment, and the other stands by to take over within the lease
duration.

The scheduler pods need to read and write that Lease and nothing else, so the
operator gives them a ServiceAccount bound (by a RoleBinding in the namespace)
to the ``bananas-scheduler`` ClusterRole that ships with the operator. The
operator may create that binding because its own ClusterRole has ``bind`` on
that one ClusterRole, not because it holds the Lease rights itself.

Shared children, several owners: every CronSchedule using the scheduler adds
itself to the children's owner references (each applies them under a field
manager of its own, so no schedule removes another's reference), and the
garbage collector removes the scheduler once the last of them is deleted.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from bananas.config import EnvValue, render_env
from bananas.keys import DEFAULT_PREFIX
from bananas.operator.config import SchedulerSettings
from bananas.operator.meta import (
    COMPONENT_SCHEDULER,
    MANAGER,
    JsonObject,
    labels,
    owner_reference,
    selector_labels,
)
from bananas.operator.pod_env import from_secret, pod_identity
from bananas.operator.specs import DEFAULT_REDIS_KEY, DEFAULT_REDIS_SECRET, RedisRef
from bananas.operator.workerpool import (
    METRICS_PORT,
    RESTRICTED_CONTAINER_SECURITY,
    RESTRICTED_POD_SECURITY,
)

APP_NAME = "bananas-scheduler"
BASE_NAME = "bananas-scheduler"
MAX_NAME = 63
_UNSAFE = re.compile(r"[^a-z0-9-]+")


def scheduler_name(redis: RedisRef) -> str:
    """The scheduler's Deployment (and Lease, ServiceAccount, RoleBinding) name for ``redis``.

    ``bananas-scheduler`` for the default Secret, key and prefix,
    ``bananas-scheduler-<secret>[-<key>][-<prefix>]`` otherwise; shortened with a hash
    when it would exceed 63 characters.
    """
    default_prefix = redis.prefix == DEFAULT_PREFIX
    defaults = (DEFAULT_REDIS_SECRET, DEFAULT_REDIS_KEY, True)
    if (redis.secret_name, redis.key, default_prefix) == defaults:
        return BASE_NAME
    suffix = redis.secret_name
    if redis.key != DEFAULT_REDIS_KEY:
        suffix = f"{suffix}-{redis.key}"
    if not default_prefix:
        suffix = f"{suffix}-{redis.prefix}"
    suffix = _UNSAFE.sub("-", suffix.lower()).strip("-") or "redis"
    name = f"{BASE_NAME}-{suffix}"
    if len(name) <= MAX_NAME:
        return name
    identity = f"{redis.secret_name}/{redis.key}/{redis.prefix}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9].rstrip('-')}-{digest}"


def field_manager(owner: Mapping[str, Any]) -> str:
    """The server-side-apply field manager of one owner's share of the scheduler objects."""
    return f"{MANAGER}-cron-{owner['metadata']['uid']}"


def _metadata(name: str, namespace: str, owner: Mapping[str, Any]) -> JsonObject:
    return {
        "name": name,
        "namespace": namespace,
        "labels": labels(APP_NAME, name, COMPONENT_SCHEDULER),
        "ownerReferences": [owner_reference(owner, controller=False)],
    }


def _container(name: str, redis: RedisRef, settings: SchedulerSettings) -> JsonObject:
    values: dict[str, EnvValue] = {
        "leader_election": "kubernetes",
        "leader_lease_name": name,
    }
    identity = pod_identity()
    tail: dict[str, EnvValue] = {"log_format": "json", "metrics_port": METRICS_PORT}
    if redis.prefix != DEFAULT_PREFIX:
        tail["prefix"] = redis.prefix
    if settings.app:
        tail["app"] = settings.app
    env: list[JsonObject] = [
        from_secret("redis_url", redis),
        *render_env(values),
        *identity,
        *render_env(tail),
    ]
    probe = {"httpGet": {"path": "/healthz", "port": "metrics"}, "periodSeconds": 10}
    container: JsonObject = {
        "name": "scheduler",
        "image": settings.image,
        "command": ["bananas"],
        "args": ["scheduler", "--leader-election", "kubernetes"],
        "env": env,
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
        "livenessProbe": probe,
        "resources": {
            "requests": {"cpu": settings.cpu_request, "memory": settings.memory},
            "limits": {"memory": settings.memory},
        },
        "securityContext": RESTRICTED_CONTAINER_SECURITY,
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    if settings.image_pull_policy:
        container["imagePullPolicy"] = settings.image_pull_policy
    return container


def render_scheduler(
    namespace: str, redis: RedisRef, owner: Mapping[str, Any], settings: SchedulerSettings
) -> list[JsonObject]:
    """ServiceAccount, RoleBinding, PodDisruptionBudget and Deployment of a scheduler
    (the Deployment last: they are applied as one group, :mod:`~bananas.operator.applied`).

    ``owner`` is the CronSchedule body applying them; the objects carry a
    (non-controller) owner reference to it.
    """
    name = scheduler_name(redis)
    selector = selector_labels(APP_NAME, name, COMPONENT_SCHEDULER)
    service_account: JsonObject = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(name, namespace, owner),
        "automountServiceAccountToken": True,
    }
    binding: JsonObject = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _metadata(name, namespace, owner),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": settings.cluster_role,
        },
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
    }
    deployment: JsonObject = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(name, namespace, owner),
        "spec": {
            "replicas": settings.replicas,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels(APP_NAME, name, COMPONENT_SCHEDULER)},
                "spec": {
                    "serviceAccountName": name,
                    "containers": [_container(name, redis, settings)],
                    "securityContext": RESTRICTED_POD_SECURITY,
                    "terminationGracePeriodSeconds": 30,
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                    "enableServiceLinks": False,
                },
            },
        },
    }
    budget: JsonObject = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(name, namespace, owner),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }
    return [service_account, binding, budget, deployment]

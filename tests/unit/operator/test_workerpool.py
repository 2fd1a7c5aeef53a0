"""WorkerPool -> Deployment and PodDisruptionBudget."""

from __future__ import annotations

from typing import Any

import pytest

from bananas.operator.specs import parse_workerpool
from bananas.operator.workerpool import (
    drain_seconds,
    initial_replicas,
    render_deployment,
    render_pdb,
    worker_env,
)

GPU_SPEC: dict[str, Any] = {
    "image": "registry.example/ml:1.2",
    "app": "ml.tasks",
    "routingKeys": ["gpu", "gpu-batch"],
    "priorities": ["high", "normal"],
    "concurrency": 2,
    "jobTimeout": "30m",
    "maxRetries": 1,
    "gpus": 1,
    "resources": {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"memory": "16Gi"}},
    "nodeSelector": {"nvidia.com/gpu.present": "true"},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}},
    "priorityClassName": "gpu-jobs",
    "serviceAccountName": "ml",
    "env": [{"name": "HF_HOME", "value": "/tmp/hf"}, {"name": "LOG_LEVEL", "value": "DEBUG"}],
    "envFrom": [{"secretRef": {"name": "ml-secrets"}}],
    "redis": {"secretName": "queue", "key": "redis-url"},
    "terminationGracePeriodSeconds": 120,
    "autoscaling": {"minReplicas": 0, "maxReplicas": 4},
}


def env_map(env: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in env}


def test_deployment_identity_labels_and_owner(pool_body: dict[str, Any]) -> None:
    dep = render_deployment(pool_body, parse_workerpool(GPU_SPEC), 3)
    meta = dep["metadata"]
    assert (dep["apiVersion"], dep["kind"]) == ("apps/v1", "Deployment")
    assert (meta["name"], meta["namespace"]) == ("email", "apps")
    assert meta["labels"] == {
        "app.kubernetes.io/name": "bananas-worker",
        "app.kubernetes.io/instance": "email",
        "app.kubernetes.io/component": "worker",
        "app.kubernetes.io/managed-by": "bananas-operator",
        "app.kubernetes.io/part-of": "bananas",
        "bananas.dev/workerpool": "email",
    }
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "bananas.dev/v1alpha1",
            "kind": "WorkerPool",
            "name": "email",
            "uid": "uid-email",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    selector = dep["spec"]["selector"]["matchLabels"]
    assert selector.items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    # The selector is immutable: only labels whose values never change.
    assert "app.kubernetes.io/managed-by" not in selector
    assert dep["spec"]["replicas"] == 3


def test_worker_environment(pool_body: dict[str, Any]) -> None:
    spec = parse_workerpool(GPU_SPEC)
    env = env_map(worker_env(spec))
    assert env["REDIS_URL"] == {"secretKeyRef": {"name": "queue", "key": "redis-url"}}
    assert env["BANANAS_APP"] == "ml.tasks"
    assert env["WORKER_ROUTING_KEYS"] == "gpu,gpu-batch"
    assert env["WORKER_PRIORITIES"] == "high,normal"
    assert env["WORKER_CONCURRENCY"] == "2"
    assert env["JOB_TIMEOUT"] == "30m"
    assert env["MAX_RETRIES"] == "1"
    assert env["SHUTDOWN_TIMEOUT"] == "115s"
    assert env["LOG_FORMAT"] == "json"
    assert env["METRICS_PORT"] == "8000"
    assert env["HF_HOME"] == "/tmp/hf"
    assert env["LOG_LEVEL"] == "DEBUG"  # the user's env wins ...
    names = [e["name"] for e in worker_env(spec)]
    assert names.count("LOG_LEVEL") == 1  # ... without a duplicate entry


def test_pod_template_carries_scheduling_and_gpu(pool_body: dict[str, Any]) -> None:
    pod = render_deployment(pool_body, parse_workerpool(GPU_SPEC), 1)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "registry.example/ml:1.2"
    assert (container["command"], container["args"]) == (["bananas"], ["worker"])
    assert container["resources"] == {
        "requests": {"cpu": "2", "memory": "8Gi"},
        "limits": {"memory": "16Gi", "nvidia.com/gpu": 1},
    }
    assert container["envFrom"] == [{"secretRef": {"name": "ml-secrets"}}]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert "nodeAffinity" in pod["affinity"]
    assert pod["priorityClassName"] == "gpu-jobs"
    assert pod["serviceAccountName"] == "ml"
    assert pod["terminationGracePeriodSeconds"] == 120


def test_pod_template_is_restricted(pool_body: dict[str, Any]) -> None:
    spec = parse_workerpool({"image": "i", "app": "a"})
    pod = render_deployment(pool_body, spec, 1)["spec"]["template"]["spec"]
    ctx = pod["containers"][0]["securityContext"]
    assert ctx["runAsNonRoot"] and ctx["readOnlyRootFilesystem"]
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {"name": "tmp", "mountPath": "/tmp"} in pod["containers"][0]["volumeMounts"]
    probes = {
        k: v["httpGet"]["path"] for k, v in pod["containers"][0].items() if k.endswith("Probe")
    }
    assert probes == {
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
        "startupProbe": "/healthz",
    }


def test_minimal_spec_has_no_empty_optional_fields(pool_body: dict[str, Any]) -> None:
    spec = parse_workerpool({"image": "i", "app": "a"})
    pod = render_deployment(pool_body, spec, 1)["spec"]["template"]["spec"]
    for absent in (
        "nodeSelector",
        "tolerations",
        "affinity",
        "priorityClassName",
        "serviceAccountName",
        "imagePullSecrets",
    ):
        assert absent not in pod
    assert "nvidia.com/gpu" not in str(pod)
    assert "envFrom" not in pod["containers"][0]


def test_pdb(pool_body: dict[str, Any]) -> None:
    spec = parse_workerpool(
        {"image": "i", "app": "a", "podDisruptionBudget": {"maxUnavailable": "50%"}}
    )
    pdb = render_pdb(pool_body, spec)
    assert (pdb["apiVersion"], pdb["kind"]) == ("policy/v1", "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == "50%"
    assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"] == "email"
    assert pdb["metadata"]["ownerReferences"][0]["kind"] == "WorkerPool"


@pytest.mark.parametrize(
    ("grace", "drain"),
    [(2, 1), (3, 2), (9, 6), (15, 10), (16, 11), (30, 25), (60, 55), (3600, 3595)],
)
def test_drain_time_follows_the_grace_period(grace: int, drain: int) -> None:
    assert drain_seconds(grace) == drain
    assert 1 <= drain_seconds(grace) < grace


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({}, 2),
        ({"desiredReplicas": 4}, 4),
        ({"desiredReplicas": 99}, 5),
        ({"desiredReplicas": 0}, 2),
        ({"desiredReplicas": -3}, 2),
        ({"desiredReplicas": "lots"}, 2),
        ({"desiredReplicas": True}, 2),
        ("nonsense", 2),
        (None, 2),
    ],
)
def test_initial_replicas_trusts_only_sane_status(status: Any, expected: int) -> None:
    spec = parse_workerpool(
        {"image": "i", "app": "a", "autoscaling": {"minReplicas": 2, "maxReplicas": 5}}
    )
    assert initial_replicas(spec, status) == expected


def test_rollout_never_needs_a_spare_gpu(pool_body: dict[str, Any]) -> None:
    cpu = render_deployment(pool_body, parse_workerpool({"image": "i", "app": "a"}), 1)
    gpu = render_deployment(pool_body, parse_workerpool(GPU_SPEC), 1)
    assert cpu["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": 0}
    assert gpu["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}


ML_SPEC: dict[str, Any] = {
    "image": "registry.example/ml:1.2",
    "app": "ml.tasks",
    "volumes": [{"name": "models", "persistentVolumeClaim": {"claimName": "hf-cache"}}],
    "volumeMounts": [{"name": "models", "mountPath": "/models", "readOnly": True}],
    "shmSize": "2Gi",
    "runtimeClassName": "nvidia",
    "topologySpreadConstraints": [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
        },
        {
            "maxSkew": 2,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"team": "ml"}},
        },
    ],
}


def test_pod_fields_for_ml_pools(pool_body: dict[str, Any]) -> None:
    pod = render_deployment(pool_body, parse_workerpool(ML_SPEC), 1)["spec"]["template"]["spec"]
    assert pod["volumes"] == [
        {"name": "tmp", "emptyDir": {}},
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}},
        {"name": "models", "persistentVolumeClaim": {"claimName": "hf-cache"}},
    ]
    assert pod["containers"][0]["volumeMounts"] == [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "dshm", "mountPath": "/dev/shm"},
        {"name": "models", "mountPath": "/models", "readOnly": True},
    ]
    assert pod["runtimeClassName"] == "nvidia"
    zone, host = pod["topologySpreadConstraints"]
    # a constraint without a selector spreads the pool's own pods
    assert zone["labelSelector"] == {
        "matchLabels": {
            "app.kubernetes.io/name": "bananas-worker",
            "app.kubernetes.io/instance": "email",
            "app.kubernetes.io/component": "worker",
        }
    }
    assert host["labelSelector"] == {"matchLabels": {"team": "ml"}}


def test_no_shm_and_no_optional_fields_by_default(pool_body: dict[str, Any]) -> None:
    spec = parse_workerpool({"image": "i", "app": "a"})
    pod = render_deployment(pool_body, spec, 1)["spec"]["template"]["spec"]
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {}}]
    assert "runtimeClassName" not in pod and "topologySpreadConstraints" not in pod


def test_the_budget_never_blocks_a_drain_over_unhealthy_pods(pool_body: dict[str, Any]) -> None:
    pdb = render_pdb(pool_body, parse_workerpool({"image": "i", "app": "a"}))
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"

"""Bad specs are refused by the API server itself (OpenAPI schema and CEL), no operator needed."""

# Fixtures are shared by importing them from sibling modules (the e2e conftest
# belongs to the harness), which ruff reads as unused imports and redefinitions.
# ruff: noqa: F401, F811

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from .controlplane import KubeCluster
from .test_operator_workerpool import GROUP, VERSION, crds

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

POOL = {"image": "bananas:e2e", "app": "app.tasks"}
CRON = {"schedule": "0 3 * * *", "job": "cleanup"}


async def create(
    api: client.ApiClient, namespace: str, kind: str, name: str, spec: dict[str, Any]
) -> dict[str, Any]:
    plural = {"WorkerPool": "workerpools", "CronSchedule": "cronschedules"}[kind]
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }
    result: dict[str, Any] = await client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, body
    )
    return result


@pytest.mark.parametrize(
    ("kind", "spec", "complaint"),
    [
        ("CronSchedule", {**CRON, "schedule": "0 3 * *"}, "spec.schedule"),
        ("CronSchedule", {**CRON, "schedule": "every night"}, "spec.schedule"),
        ("CronSchedule", {**CRON, "priority": "urgent"}, "spec.priority"),
        ("CronSchedule", {**CRON, "routingKey": "no spaces"}, "spec.routingKey"),
        ("CronSchedule", {**CRON, "concurrencyPolicy": "Sometimes"}, "spec.concurrencyPolicy"),
        ("WorkerPool", {**POOL, "priorities": ["high", "urgent"]}, "spec.priorities"),
        ("WorkerPool", {**POOL, "routingKeys": ["gpu", "bad/key"]}, "spec.routingKeys"),
        ("WorkerPool", {**POOL, "routingKeys": ["x" * 65]}, "spec.routingKeys"),
        ("WorkerPool", {**POOL, "concurrency": -1}, "spec.concurrency"),
        ("WorkerPool", {**POOL, "concurrency": 0}, "spec.concurrency"),
        ("WorkerPool", {**POOL, "gpus": -1}, "spec.gpus"),
        ("WorkerPool", {**POOL, "jobTimeout": "soon"}, "spec.jobTimeout"),
        (
            "WorkerPool",
            {**POOL, "autoscaling": {"minReplicas": 5, "maxReplicas": 2}},
            "minReplicas must not be greater than maxReplicas",
        ),
        (
            "WorkerPool",
            {**POOL, "autoscaling": {"minReplicas": 11}},  # default max is 10
            "minReplicas must not be greater than maxReplicas",
        ),
        ("WorkerPool", {"app": "app.tasks"}, "spec.image"),
        (
            "WorkerPool",
            {**POOL, "jobTimeout": "30m", "terminationGracePeriodSeconds": 600},
            "terminationGracePeriodSeconds must be at least jobTimeout + 5s",
        ),
        (
            "WorkerPool",
            {**POOL, "env": [{"name": "BANANAS_PREFIX", "value": "x"}]},
            "BANANAS_PREFIX is set from spec.redis.prefix",
        ),
        ("WorkerPool", {**POOL, "redis": {"prefix": "{tag}"}}, "spec.redis.prefix"),
        (
            "WorkerPool",
            {**POOL, "volumes": [{"name": "tmp", "emptyDir": {}}]},
            "the volume names tmp and dshm are the operator's own",
        ),
        (
            "WorkerPool",
            {**POOL, "volumeMounts": [{"name": "x", "mountPath": "/dev/shm"}]},
            "/tmp and /dev/shm are mounted by the operator",
        ),
        (
            "WorkerPool",  # the default jobTimeout (5m) counts too
            {**POOL, "terminationGracePeriodSeconds": 60},
            "terminationGracePeriodSeconds must be at least jobTimeout + 5s",
        ),
    ],
)
async def test_bad_specs_are_refused(
    kube_api: client.ApiClient,
    namespace: str,
    crds: None,
    kind: str,
    spec: dict[str, Any],
    complaint: str,
) -> None:
    with pytest.raises(ApiException) as caught:
        await create(kube_api, namespace, kind, "bad", spec)
    assert caught.value.status == 422
    message = json.loads(caught.value.body)["message"]
    assert complaint in message, message


async def test_a_grace_period_that_covers_the_job_timeout_is_accepted(
    kube_api: client.ApiClient, namespace: str, crds: None
) -> None:
    spec = {**POOL, "jobTimeout": "1m30s", "terminationGracePeriodSeconds": 95}
    pool = await create(kube_api, namespace, "WorkerPool", "graceful", spec)
    assert pool["spec"]["terminationGracePeriodSeconds"] == 95


async def test_long_names_are_refused(
    kube_api: client.ApiClient, namespace: str, crds: None
) -> None:
    with pytest.raises(ApiException) as caught:
        await create(kube_api, namespace, "WorkerPool", "p" * 64, POOL)
    assert caught.value.status == 422
    assert "at most 63 characters" in json.loads(caught.value.body)["message"]


async def test_defaults_are_filled_in_by_the_server(
    kube_api: client.ApiClient, namespace: str, crds: None
) -> None:
    pool = await create(kube_api, namespace, "WorkerPool", "defaults", POOL)
    spec = pool["spec"]
    assert spec["routingKeys"] == ["default"]
    assert spec["priorities"] == ["high", "normal", "low"]
    assert spec["redis"] == {"secretName": "bananas-redis", "key": "url", "prefix": "bananas"}
    assert spec["autoscaling"]["scaleDown"] == {"stabilizationWindowSeconds": 300}
    assert "terminationGracePeriodSeconds" not in spec  # the operator derives it from jobTimeout
    cron = await create(kube_api, namespace, "CronSchedule", "defaults", CRON)
    assert (cron["spec"]["timeZone"], cron["spec"]["concurrencyPolicy"]) == ("UTC", "Allow")


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_apply_refuses_a_bad_cron(
    kube_cluster: KubeCluster, namespace: str, crds: None
) -> None:
    manifest = json.dumps(
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "CronSchedule",
            "metadata": {"name": "typo", "namespace": namespace},
            "spec": {**CRON, "schedule": "0 3 * * * *"},
        }
    )
    result = subprocess.run(
        ["kubectl", "--kubeconfig", str(kube_cluster.kubeconfig), "apply", "-f", "-"],
        input=manifest,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "spec.schedule" in result.stderr, result.stderr

"""The operator works with nothing but the RBAC it ships (manifests/base/rbac.yaml).

The operator runs as a ServiceAccount bound to the shipped ``bananas-operator``
ClusterRole, with a token from the TokenRequest API, and does its whole job:
a WorkerPool's Deployment and status, a CronSchedule's registration, its
scheduler's RoleBinding (through the ``bind`` verb on ``bananas-scheduler``),
Events, and the finalizer on deletion. A permission missing from the
ClusterRole fails this test.
"""

# Fixtures are shared by importing them from sibling modules (the e2e conftest
# belongs to the harness), which ruff reads as unused imports and redefinitions.
# ruff: noqa: F401, F811

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from bananas import AsyncClient
from bananas.operator.testing import OperatorThread, eventually, wait_for_event

from .controlplane import REPO_ROOT, KubeCluster
from .redis_fixture import operator_redis
from .test_operator_cronschedule import Crons, registered
from .test_operator_workerpool import (
    GROUP,
    VERSION,
    Pools,
    crds,
    operator_config,
    redis,
    redis_secret,
    route,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

RBAC = REPO_ROOT / "manifests" / "base" / "rbac.yaml"
OPERATOR_ROLE = "bananas-operator"


async def apply_cluster_rbac(api: client.ApiClient) -> None:
    """The shipped ClusterRoles, exactly as a user installs them."""
    rbac = client.RbacAuthorizationV1Api(api)
    for doc in yaml.safe_load_all(RBAC.read_text()):
        if doc and doc["kind"] == "ClusterRole":
            options: dict[str, Any] = {"_content_type": "application/apply-patch+yaml"}
            await rbac.patch_cluster_role(
                doc["metadata"]["name"], doc, field_manager="bananas-e2e", force=True, **options
            )


async def service_account_kubeconfig(
    cluster: KubeCluster, api: client.ApiClient, namespace: str, account: str, directory: Path
) -> Path:
    """A kubeconfig with a TokenRequest token of ServiceAccount ``namespace/account``."""
    token = await client.CoreV1Api(api).create_namespaced_service_account_token(
        account,
        namespace,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
        ),
    )
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster_entry = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": account,
        "clusters": [{"name": "e2e", "cluster": cluster_entry["cluster"]}],
        "users": [{"name": account, "user": {"token": token.status.token}}],
        "contexts": [
            {
                "name": account,
                "context": {"cluster": "e2e", "user": account, "namespace": namespace},
            }
        ],
    }
    path = directory / f"{account}.kubeconfig"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
async def operator_kubeconfig(
    kube_cluster_with_controllers: KubeCluster,
    kube_api: client.ApiClient,
    namespace: str,
    tmp_path: Path,
) -> AsyncIterator[Path]:
    """A kubeconfig for a ServiceAccount bound to nothing but the shipped ClusterRole."""
    await apply_cluster_rbac(kube_api)
    core = client.CoreV1Api(kube_api)
    rbac = client.RbacAuthorizationV1Api(kube_api)
    await core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="operator"))
    )
    binding = f"bananas-operator-{namespace}"
    await rbac.create_cluster_role_binding(
        client.V1ClusterRoleBinding(
            metadata=client.V1ObjectMeta(name=binding),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=OPERATOR_ROLE
            ),
            subjects=[
                client.RbacV1Subject(kind="ServiceAccount", name="operator", namespace=namespace)
            ],
        )
    )
    path = await service_account_kubeconfig(
        kube_cluster_with_controllers, kube_api, namespace, "operator", tmp_path
    )
    try:
        yield path
    finally:
        try:
            await rbac.delete_cluster_role_binding(binding)
        except ApiException as exc:
            if exc.status != 404:
                raise


async def test_operator_runs_on_its_shipped_rbac(
    kube_cluster_with_controllers: KubeCluster,
    namespace: str,
    crds: None,
    redis_secret: str,
    operator_kubeconfig: Path,
    kube_api: client.ApiClient,
    redis: AsyncClient,
) -> None:
    base = operator_config(kube_cluster_with_controllers, namespace)
    config = type(base)(**{**base.__dict__, "kubeconfig": str(operator_kubeconfig)})
    pools, crons = Pools(kube_api, namespace), Crons(kube_api, namespace)
    with OperatorThread(config) as operator:
        await pools.create(
            "rbac",
            {
                "image": "bananas:e2e",
                "app": "app.tasks",
                "routingKeys": [route()],
                "autoscaling": {"minReplicas": 1, "pollInterval": 1},
            },
        )
        await eventually(lambda: pools.deployment("rbac"), what="the Deployment")
        await eventually(
            lambda: pools.condition("rbac", "RedisReachable", "True"), what="the status written"
        )

        await crons.create("rbac", {"schedule": "@hourly", "job": "x"})
        await eventually(lambda: registered(redis, f"{namespace}.rbac"), what="registration")
        await eventually(
            lambda: crons.condition("rbac", "SchedulerReady", "True"),
            what="the scheduler applied, RoleBinding included",
        )
        binding = await client.RbacAuthorizationV1Api(kube_api).read_namespaced_role_binding(
            "bananas-scheduler", namespace
        )
        assert binding.role_ref.name == "bananas-scheduler"
        await wait_for_event(kube_api, namespace, "rbac", "Registered")

        await crons.custom.delete_namespaced_custom_object(
            GROUP, VERSION, namespace, "cronschedules", "rbac"
        )

        async def deleted() -> bool:
            return await crons.get("rbac") is None

        await eventually(deleted, what="the finalizer handled under the shipped RBAC")
        assert operator.alive

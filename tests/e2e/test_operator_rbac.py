"""The operator works with nothing but the RBAC it ships: manifests/base/rbac.yaml, and
the chart's namespaced mode (operator.watchNamespaces set: Roles per namespace).

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
import subprocess
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


async def _token_kubeconfig(
    cluster: KubeCluster, core: client.CoreV1Api, namespace: str, tmp_path: Path
) -> Path:
    """A kubeconfig with a token of the ServiceAccount ``operator`` (TokenRequest)."""
    token = await core.create_namespaced_service_account_token(
        "operator",
        namespace,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
        ),
    )
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "operator",
        "clusters": [{"name": "e2e", "cluster": cluster["cluster"]}],
        "users": [{"name": "operator", "user": {"token": token.status.token}}],
        "contexts": [
            {
                "name": "operator",
                "context": {"cluster": "e2e", "user": "operator", "namespace": namespace},
            }
        ],
    }
    path = tmp_path / "operator.kubeconfig"
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
    path = await _token_kubeconfig(kube_cluster_with_controllers, core, namespace, tmp_path)
    try:
        yield path
    finally:
        try:
            await rbac.delete_cluster_role_binding(binding)
        except ApiException as exc:
            if exc.status != 404:
                raise


def render_chart_rbac(namespace: str) -> list[dict[str, Any]]:
    """The chart's RBAC objects with operator.watchNamespaces={namespace}."""
    from .test_operator_chart import helm

    out = subprocess.run(
        [helm(), "template", "bananas", str(REPO_ROOT / "charts" / "bananas"),
         "--namespace", "bananas-system", "--set", f"operator.watchNamespaces={{{namespace}}}"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    kinds = {"ClusterRole", "Role"}
    return [d for d in yaml.safe_load_all(out) if d and d.get("kind") in kinds]


@pytest.fixture
async def namespaced_kubeconfig(
    kube_cluster_with_controllers: KubeCluster,
    kube_api: client.ApiClient,
    namespace: str,
    tmp_path: Path,
) -> AsyncIterator[Path]:
    """The ServiceAccount ``operator`` bound the way the chart binds it in namespaced mode."""
    rbac = client.RbacAuthorizationV1Api(kube_api)
    core = client.CoreV1Api(kube_api)
    options: dict[str, Any] = {"_content_type": "application/apply-patch+yaml"}
    subject = client.RbacV1Subject(kind="ServiceAccount", name="operator", namespace=namespace)
    cluster_bindings = []
    await core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="operator"))
    )
    for doc in render_chart_rbac(namespace):
        name = doc["metadata"]["name"]
        if doc["kind"] == "Role":
            assert doc["metadata"]["namespace"] == namespace
            await rbac.patch_namespaced_role(
                name, namespace, doc, field_manager="bananas-e2e", force=True, **options
            )
            await rbac.create_namespaced_role_binding(
                namespace,
                client.V1RoleBinding(
                    metadata=client.V1ObjectMeta(name=name),
                    role_ref=client.V1RoleRef(
                        api_group="rbac.authorization.k8s.io", kind="Role", name=name
                    ),
                    subjects=[subject],
                ),
            )
            continue
        rules = {r for rule in doc["rules"] for r in rule["resources"]}
        await rbac.patch_cluster_role(name, doc, field_manager="bananas-e2e", force=True, **options)
        if name == OPERATOR_ROLE:
            # cluster-wide, only what cannot be namespaced
            assert rules == {"customresourcedefinitions", "namespaces"}, rules
            binding = f"{name}-{namespace}"
            await rbac.create_cluster_role_binding(
                client.V1ClusterRoleBinding(
                    metadata=client.V1ObjectMeta(name=binding),
                    role_ref=client.V1RoleRef(
                        api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=name
                    ),
                    subjects=[subject],
                )
            )
            cluster_bindings.append(binding)
    assert cluster_bindings, "the chart rendered no operator ClusterRole"
    path = await _token_kubeconfig(kube_cluster_with_controllers, core, namespace, tmp_path)
    try:
        yield path
    finally:
        for binding in cluster_bindings:
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
    await _do_the_whole_job(
        kube_cluster_with_controllers, namespace, operator_kubeconfig, kube_api, redis
    )


async def test_operator_runs_on_the_charts_namespaced_rbac(
    kube_cluster_with_controllers: KubeCluster,
    namespace: str,
    crds: None,
    redis_secret: str,
    namespaced_kubeconfig: Path,
    kube_api: client.ApiClient,
    redis: AsyncClient,
) -> None:
    """operator.watchNamespaces set: a Role in the namespace, only CRDs and namespaces
    (list, watch) cluster-wide. The same job gets done."""
    await _do_the_whole_job(
        kube_cluster_with_controllers, namespace, namespaced_kubeconfig, kube_api, redis
    )


async def _do_the_whole_job(
    kube_cluster_with_controllers: KubeCluster,
    namespace: str,
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

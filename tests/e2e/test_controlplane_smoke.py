"""Smoke tests of the e2e control plane itself.

They prove what later e2e tests rely on: the apiserver reports a stamped
Kubernetes version, enforces RBAC, serves a freshly applied CRD (a tiny one
defined here, not the project's), and, with the controller-manager, turns a
Deployment into a ReplicaSet and Pods and garbage-collects them again.
They run on the local control plane and on an existing cluster alike.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import shutil
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.rest import ApiException

from tests.support.waiting import eventually_async

from .controlplane import (
    UNPRIVILEGED_USER,
    ControlPlane,
    KubeCluster,
    cache_bin_dir,
    kubernetes_version,
)

pytestmark = pytest.mark.e2e

T = TypeVar("T")
RBAC_GROUP = "rbac.authorization.k8s.io"


async def eventually(
    check: Callable[[], Awaitable[T | None]], *, what: str, timeout: float = 60
) -> T:
    """Poll ``check`` every 0.2 s until it returns something truthy; AssertionError after."""
    value = await eventually_async(check, timeout, interval=0.2, what=what, error=AssertionError)
    assert value is not None
    return value


def owned_by(obj: Any, uid: str) -> bool:
    return any(ref.uid == uid for ref in obj.metadata.owner_references or [])


async def test_server_reports_stamped_version(
    kube_cluster: KubeCluster, kube_api: client.ApiClient
) -> None:
    info = await client.VersionApi(kube_api).get_code()
    assert re.fullmatch(r"v1\.\d+\.\d+([-+].*)?", info.git_version), info.git_version
    assert info.major == "1"
    assert info.git_version.startswith(f"v1.{info.minor.rstrip('+')}.")
    built_here = isinstance(kube_cluster, ControlPlane) and (
        kube_cluster.binaries.kube_apiserver.parent == cache_bin_dir()
    )
    if built_here:  # by hack/controlplane.sh, which stamps the pinned version
        assert info.git_version == kubernetes_version()

    kubectl = shutil.which("kubectl")
    if kubectl is not None:  # kubectl sees the same stamped version
        proc = await asyncio.create_subprocess_exec(
            kubectl, "--kubeconfig", str(kube_cluster.kubeconfig), "version", "-o", "json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        assert json.loads(out)["serverVersion"]["gitVersion"] == info.git_version


async def test_rbac_denies_then_allows_unprivileged_user(
    kube_cluster: KubeCluster, kube_api: client.ApiClient, namespace: str
) -> None:
    if not isinstance(kube_cluster, ControlPlane):
        pytest.skip("needs the local control plane's unprivileged user")
    kubeconfig = kube_cluster.kubeconfig_for(UNPRIVILEGED_USER)
    user_api = await config.new_client_from_config(config_file=str(kubeconfig))
    try:
        as_user = client.CoreV1Api(user_api)
        with pytest.raises(ApiException) as denied:
            await as_user.list_namespaced_config_map(namespace)
        assert denied.value.status == 403

        rbac = client.RbacAuthorizationV1Api(kube_api)
        await rbac.create_namespaced_role(
            namespace,
            {
                "metadata": {"name": "read-configmaps"},
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}],
            },
        )
        await rbac.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": "read-configmaps"},
                "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": "read-configmaps"},
                "subjects": [{"apiGroup": RBAC_GROUP, "kind": "User", "name": UNPRIVILEGED_USER}],
            },
        )

        async def allowed() -> bool:
            try:
                await as_user.list_namespaced_config_map(namespace)
            except ApiException as exc:
                if exc.status != 403:
                    raise
                return False
            return True

        await eventually(allowed, what="the RoleBinding to take effect", timeout=30)
        with pytest.raises(ApiException) as still_denied:  # the Role grants configmaps only
            await as_user.list_namespaced_secret(namespace)
        assert still_denied.value.status == 403
    finally:
        await user_api.close()


def widget_crd(group: str) -> dict[str, Any]:
    """A minimal namespaced CRD whose schema requires ``spec.size >= 1``."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {
                "plural": "widgets",
                "singular": "widget",
                "kind": "Widget",
                "listKind": "WidgetList",
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": ["size"],
                                    "properties": {"size": {"type": "integer", "minimum": 1}},
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


async def test_crd_becomes_established_and_serves_custom_objects(
    kube_api: client.ApiClient, namespace: str
) -> None:
    group = f"e2e-{secrets.token_hex(4)}.bananas.test"  # unique: CRDs are cluster-scoped
    crd_name = f"widgets.{group}"
    extensions = client.ApiextensionsV1Api(kube_api)
    custom = client.CustomObjectsApi(kube_api)
    await extensions.create_custom_resource_definition(widget_crd(group))
    try:

        async def established() -> bool:
            crd = await extensions.read_custom_resource_definition(crd_name)
            conditions = (crd.status and crd.status.conditions) or []
            return any(c.type == "Established" and c.status == "True" for c in conditions)

        await eventually(established, what=f"CRD {crd_name} to be Established", timeout=30)

        async def create_widget(name: str, size: int) -> dict[str, Any]:
            body = {
                "apiVersion": f"{group}/v1",
                "kind": "Widget",
                "metadata": {"name": name},
                "spec": {"size": size},
            }
            created: dict[str, Any] = await custom.create_namespaced_custom_object(
                group, "v1", namespace, "widgets", body
            )
            return created

        created = await create_widget("w1", 3)
        assert created["metadata"]["uid"]
        fetched = await custom.get_namespaced_custom_object(group, "v1", namespace, "widgets", "w1")
        assert fetched["spec"] == {"size": 3}
        assert fetched["metadata"]["namespace"] == namespace

        with pytest.raises(ApiException) as rejected:  # the schema is enforced
            await create_widget("w0", 0)
        assert rejected.value.status == 422

        listed = await custom.list_namespaced_custom_object(group, "v1", namespace, "widgets")
        assert [item["metadata"]["name"] for item in listed["items"]] == ["w1"]
    finally:
        await extensions.delete_custom_resource_definition(crd_name)


async def test_deployment_gets_replicaset_and_pods_then_garbage_collected(
    kube_cluster_with_controllers: KubeCluster, kube_api: client.ApiClient, namespace: str
) -> None:
    apps = client.AppsV1Api(kube_api)
    core = client.CoreV1Api(kube_api)
    labels = {"app": "smoke"}
    deployment = await apps.create_namespaced_deployment(
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "smoke"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "terminationGracePeriodSeconds": 0,
                        "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}],
                    },
                },
            },
        },
    )

    async def owned_replicaset() -> Any:
        sets = await apps.list_namespaced_replica_set(namespace)
        return next((rs for rs in sets.items if owned_by(rs, deployment.metadata.uid)), None)

    replicaset = await eventually(owned_replicaset, what="the Deployment's ReplicaSet")
    assert replicaset.spec.replicas == 2
    selector = replicaset.spec.selector.match_labels
    assert selector["app"] == "smoke"
    assert "pod-template-hash" in selector  # added by the deployment controller

    async def two_pods() -> list[Any] | None:
        pods = await core.list_namespaced_pod(namespace)
        owned = [pod for pod in pods.items if owned_by(pod, replicaset.metadata.uid)]
        return owned if len(owned) == 2 else None

    pods = await eventually(two_pods, what="the ReplicaSet's two Pods")
    assert all(pod.metadata.labels["app"] == "smoke" for pod in pods)
    if kube_cluster_with_controllers.kind == "local":  # no scheduler, no kubelet
        assert all(pod.spec.node_name is None and pod.status.phase == "Pending" for pod in pods)

    await apps.delete_namespaced_deployment("smoke", namespace, propagation_policy="Background")

    async def all_collected() -> bool:
        sets = await apps.list_namespaced_replica_set(namespace)
        pods = await core.list_namespaced_pod(namespace)
        return not sets.items and not pods.items

    await eventually(all_collected, what="the garbage collector to remove the ReplicaSet and Pods")

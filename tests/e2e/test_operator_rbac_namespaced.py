"""The operator works with the chart's namespaced RBAC, and with nothing more.

``helm template`` renders the chart with ``operator.watchNamespaces`` set (so
``rbac.scope: auto`` is namespaced): a Role and RoleBinding in the watched
namespace, the Lease Role in the operator's own namespace, the scheduler's
ClusterRole (which grants nothing until the operator binds it) and the
ServiceAccount. Those objects, and only those, are applied; the operator runs
with a TokenRequest token of that ServiceAccount, elects itself leader and
does its whole job in the watched namespace. The same token is refused
everything cluster-wide the ClusterRole mode grants: CRDs, namespaces,
Secrets and Deployments outside the watched namespace.
"""

# Fixtures are shared by importing them from sibling modules (the e2e conftest
# belongs to the harness), which ruff reads as unused imports and redefinitions.
# ruff: noqa: F401, F811

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.rest import ApiException

from bananas import AsyncClient
from bananas.operator.config import LeaderElectionSettings, SchedulerSettings
from bananas.operator.testing import OperatorThread, eventually, wait_for_event

from .controlplane import KubeCluster
from .redis_fixture import operator_redis
from .test_operator_chart import CHART, documents, helm, run
from .test_operator_cronschedule import Crons, registered
from .test_operator_rbac import service_account_kubeconfig
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


@dataclass
class Install:
    """The chart's RBAC objects, applied for one release."""

    release: str
    home: str  # the operator's namespace (the release namespace)
    kubeconfig: Path
    scheduler_role: str


async def apply(api: client.ApiClient, doc: dict[str, Any]) -> None:
    rbac, core = client.RbacAuthorizationV1Api(api), client.CoreV1Api(api)
    kind, ns = doc["kind"], doc["metadata"].get("namespace")
    if kind == "Role":
        await rbac.create_namespaced_role(ns, doc)
    elif kind == "RoleBinding":
        await rbac.create_namespaced_role_binding(ns, doc)
    elif kind == "ClusterRole":
        await rbac.create_cluster_role(doc)
    elif kind == "ServiceAccount":
        await core.create_namespaced_service_account(ns, doc)
    else:
        raise AssertionError(f"the namespaced RBAC rendered an unexpected {kind}")


@pytest.fixture
async def namespaced_install(
    kube_cluster_with_controllers: KubeCluster,
    kube_api: client.ApiClient,
    namespace: str,
    tmp_path: Path,
) -> AsyncIterator[Install]:
    core = client.CoreV1Api(kube_api)
    home = f"{namespace}-op"
    release = f"e2e-{secrets.token_hex(3)}"
    rendered = run(
        helm(), "template", release, str(CHART),
        "--namespace", home,
        "--set", f"operator.watchNamespaces={{{namespace}}}",
        "--show-only", "templates/rbac.yaml",
        "--show-only", "templates/serviceaccount.yaml",
    )  # fmt: skip
    docs = documents(rendered)
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=home)))
    kinds = sorted((d["kind"], d["metadata"].get("namespace", "")) for d in docs)
    assert kinds == sorted(
        [
            ("ClusterRole", ""),  # the scheduler's, bound by the operator
            ("Role", home),  # the Lease
            ("Role", namespace),
            ("RoleBinding", home),
            ("RoleBinding", namespace),
            ("ServiceAccount", home),
        ]
    ), kinds
    account = next(d for d in docs if d["kind"] == "ServiceAccount")["metadata"]["name"]
    role = next(d for d in docs if d["kind"] == "ClusterRole")["metadata"]["name"]
    try:
        for doc in docs:
            await apply(kube_api, doc)
        path = await service_account_kubeconfig(
            kube_cluster_with_controllers, kube_api, home, account, tmp_path
        )
        yield Install(release, home, path, role)
    finally:
        with contextlib.suppress(ApiException):
            await client.RbacAuthorizationV1Api(kube_api).delete_cluster_role(role)
        await core.delete_namespace(home)


async def refused(call: Any) -> bool:
    try:
        await call
    except ApiException as exc:
        return exc.status == 403
    return False


async def test_operator_runs_on_namespaced_rbac(
    kube_cluster_with_controllers: KubeCluster,
    namespace: str,
    crds: None,
    redis_secret: str,
    namespaced_install: Install,
    kube_api: client.ApiClient,
    redis: AsyncClient,
) -> None:
    install = namespaced_install
    # Nothing cluster-wide, nothing outside the watched namespace.
    core = client.CoreV1Api(kube_api)
    await core.create_namespaced_secret(
        install.home, client.V1Secret(metadata=client.V1ObjectMeta(name="elsewhere"))
    )
    own = await config.new_client_from_config(config_file=str(install.kubeconfig))
    try:
        ext, own_core = client.ApiextensionsV1Api(own), client.CoreV1Api(own)
        own_apps = client.AppsV1Api(own)
        assert await refused(ext.list_custom_resource_definition())
        assert await refused(own_core.list_namespace())
        assert await refused(own_core.read_namespaced_secret("elsewhere", install.home))
        assert await refused(own_apps.list_deployment_for_all_namespaces())
        assert await refused(
            own_apps.create_namespaced_deployment(
                install.home, {"metadata": {"name": "x"}, "spec": {}}
            )
        )
        await own_core.read_namespaced_secret("bananas-redis", namespace)  # allowed
    finally:
        await own.close()

    base = operator_config(kube_cluster_with_controllers, namespace)
    cfg = replace(
        base,
        kubeconfig=str(install.kubeconfig),
        scan_cluster=False,
        scheduler=replace(base.scheduler, cluster_role=install.scheduler_role),
        leader_election=LeaderElectionSettings(
            enabled=True,
            namespace=install.home,
            name=f"{install.release}-bananas-operator",
            identity="op-0",
            lease_duration=4,
            renew_deadline=3,
            retry_period=1,
        ),
    )
    pools, crons = Pools(kube_api, namespace), Crons(kube_api, namespace)
    with OperatorThread(cfg) as operator:
        await pools.create(
            "scoped",
            {
                "image": "bananas:e2e",
                "app": "app.tasks",
                "routingKeys": [route()],
                "autoscaling": {"minReplicas": 1, "pollInterval": 1},
            },
        )
        await eventually(lambda: pools.deployment("scoped"), what="the Deployment")
        await eventually(
            lambda: pools.condition("scoped", "RedisReachable", "True"), what="the status"
        )
        await crons.create("scoped", {"schedule": "@hourly", "job": "x"})
        await eventually(lambda: registered(redis, f"{namespace}.scoped"), what="registration")
        await eventually(
            lambda: crons.condition("scoped", "SchedulerReady", "True"),
            what="the scheduler's RoleBinding, bound through the Role's bind rule",
        )
        binding = await client.RbacAuthorizationV1Api(kube_api).read_namespaced_role_binding(
            "bananas-scheduler", namespace
        )
        assert binding.role_ref.name == install.scheduler_role
        await wait_for_event(kube_api, namespace, "scoped", "Registered")
        lease = await client.CoordinationV1Api(kube_api).read_namespaced_lease(
            cfg.leader_election.name, install.home
        )
        assert lease.spec.holder_identity == "op-0"

        await crons.custom.delete_namespaced_custom_object(
            GROUP, VERSION, namespace, "cronschedules", "scoped"
        )

        async def deleted() -> bool:
            return await crons.get("scoped") is None

        await eventually(deleted, what="the finalizer handled under namespaced RBAC")
        assert operator.alive

"""The operator works with nothing but the RBAC it ships: manifests/base/rbac.yaml, and
the chart's namespaced mode (operator.watchNamespaces set: Roles per namespace).

The operator runs as a ServiceAccount bound to the shipped ``bananas-operator``
ClusterRole, with a token from the TokenRequest API, and does its whole job:
a WorkerPool's Deployment and status, a CronSchedule's registration, its
scheduler's RoleBinding (through the ``bind`` verb on ``bananas-scheduler``),
Events, and the finalizer on deletion. A permission missing from the
ClusterRole fails this test.

In namespaced mode the chart's RBAC objects are applied exactly as ``helm
template`` renders them for a release in its own namespace: the operator's
Role in the watched namespace, its ClusterRole (CRDs and namespaces, list and
watch, nothing else), the Lease Role in the release namespace, the
scheduler's ClusterRole and the ServiceAccount. The operator elects itself
leader through that Lease and does the same job, and its token is refused
Secrets and Deployments outside the watched namespace.
"""

# Fixtures are shared by importing them from sibling modules (the e2e conftest
# belongs to the harness), which ruff reads as unused imports and redefinitions.
# ruff: noqa: F401, F811

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio import config as kube_config
from kubernetes_asyncio.client.rest import ApiException

from bananas import AsyncClient
from bananas.operator.config import LeaderElectionSettings, OperatorConfig
from bananas.operator.testing import OperatorThread, eventually, wait_for_event

from .controlplane import REPO_ROOT, KubeCluster
from .redis_fixture import operator_redis
from .test_operator_chart import CHART, documents, helm, run
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


@dataclass
class Install:
    """The chart's RBAC objects, applied for one release."""

    release: str
    home: str  # the operator's namespace (the release namespace)
    kubeconfig: Path
    scheduler_role: str


async def apply_rendered(api: client.ApiClient, doc: dict[str, Any]) -> None:
    rbac, core = client.RbacAuthorizationV1Api(api), client.CoreV1Api(api)
    kind, ns = doc["kind"], doc["metadata"].get("namespace")
    if kind == "Role":
        await rbac.create_namespaced_role(ns, doc)
    elif kind == "RoleBinding":
        await rbac.create_namespaced_role_binding(ns, doc)
    elif kind == "ClusterRole":
        await rbac.create_cluster_role(doc)
    elif kind == "ClusterRoleBinding":
        await rbac.create_cluster_role_binding(doc)
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
    """The chart's RBAC with operator.watchNamespaces={namespace}, for a release in its
    own namespace, applied as rendered."""
    core = client.CoreV1Api(kube_api)
    rbac = client.RbacAuthorizationV1Api(kube_api)
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
    kinds = sorted((d["kind"], d["metadata"].get("namespace", "")) for d in docs)
    assert kinds == sorted(
        [
            ("ClusterRole", ""),  # the operator's: CRDs and namespaces only
            ("ClusterRoleBinding", ""),
            ("ClusterRole", ""),  # the scheduler's, bound by the operator
            ("Role", home),  # the Lease
            ("RoleBinding", home),
            ("Role", namespace),
            ("RoleBinding", namespace),
            ("ServiceAccount", home),
        ]
    ), kinds
    cluster_roles = [d for d in docs if d["kind"] == "ClusterRole"]
    operator_role = next(d for d in cluster_roles if d["metadata"]["name"].endswith("-operator"))
    cluster_wide = {r for rule in operator_role["rules"] for r in rule["resources"]}
    assert cluster_wide == {"customresourcedefinitions", "namespaces"}, cluster_wide
    assert {v for rule in operator_role["rules"] for v in rule["verbs"]} == {"list", "watch"}
    account = next(d for d in docs if d["kind"] == "ServiceAccount")["metadata"]["name"]
    scheduler_role = next(d for d in cluster_roles if d is not operator_role)["metadata"]["name"]
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=home)))
    try:
        for doc in docs:
            await apply_rendered(kube_api, doc)
        path = await service_account_kubeconfig(
            kube_cluster_with_controllers, kube_api, home, account, tmp_path
        )
        yield Install(release, home, path, scheduler_role)
    finally:
        for doc in docs:
            with contextlib.suppress(ApiException):
                if doc["kind"] == "ClusterRole":
                    await rbac.delete_cluster_role(doc["metadata"]["name"])
                elif doc["kind"] == "ClusterRoleBinding":
                    await rbac.delete_cluster_role_binding(doc["metadata"]["name"])
        await core.delete_namespace(home)


async def refused(call: Any) -> bool:
    try:
        await call
    except ApiException as exc:
        return exc.status == 403
    return False


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
    config = replace(base, kubeconfig=str(operator_kubeconfig))
    await _do_the_whole_job(config, namespace, kube_api, redis)


async def test_operator_runs_on_the_charts_namespaced_rbac(
    kube_cluster_with_controllers: KubeCluster,
    namespace: str,
    crds: None,
    redis_secret: str,
    namespaced_install: Install,
    kube_api: client.ApiClient,
    redis: AsyncClient,
) -> None:
    """operator.watchNamespaces set: a Role in the namespace, only CRDs and namespaces
    (list, watch) cluster-wide, the Lease in the release namespace. The same job gets
    done, by the elected leader."""
    install = namespaced_install
    core = client.CoreV1Api(kube_api)
    await core.create_namespaced_secret(
        install.home, client.V1Secret(metadata=client.V1ObjectMeta(name="elsewhere"))
    )
    own = await kube_config.new_client_from_config(config_file=str(install.kubeconfig))
    try:
        own_core, own_apps = client.CoreV1Api(own), client.AppsV1Api(own)
        assert await refused(own_core.read_namespaced_secret("elsewhere", install.home))
        assert await refused(own_core.list_secret_for_all_namespaces())
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
    await _do_the_whole_job(cfg, namespace, kube_api, redis)


async def _do_the_whole_job(
    cfg: OperatorConfig, namespace: str, kube_api: client.ApiClient, redis: AsyncClient
) -> None:
    pools, crons = Pools(kube_api, namespace), Crons(kube_api, namespace)
    with OperatorThread(cfg) as operator:
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
        cache = operator.context.deployments if operator.context else None
        assert cache is not None

        async def watched() -> bool:  # list and watch are granted, not only get
            return cache.synced(namespace) and cache.lookup(namespace, "rbac")[1] is not None

        await eventually(watched, what="the Deployment in the operator's watch")
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
        assert binding.role_ref.name == cfg.scheduler.cluster_role
        await wait_for_event(kube_api, namespace, "rbac", "Registered")
        election = cfg.leader_election
        if election.enabled:
            lease = await client.CoordinationV1Api(kube_api).read_namespaced_lease(
                election.name, election.namespace
            )
            assert lease.spec.holder_identity == election.identity

        await crons.custom.delete_namespaced_custom_object(
            GROUP, VERSION, namespace, "cronschedules", "rbac"
        )

        async def deleted() -> bool:
            return await crons.get("rbac") is None

        await eventually(deleted, what="the finalizer handled under the shipped RBAC")
        assert operator.alive

"""The dashboard's Kubernetes page against a real kube-apiserver, with the chart's RBAC.

The chart's dashboard RBAC (``templates/dashboard/rbac.yaml``, rendered by ``helm
template``) is applied as rendered; the dashboard reads with a TokenRequest token of
its ServiceAccount, so a permission missing from the ClusterRole fails this test, and
so does one too many (the token must not write). A WorkerPool and a CronSchedule are
created and their status written the way the operator writes it (conditions, replica
counts, the autoscaler's memory); ``/api/kubernetes`` and the page must show them. A
ServiceAccount bound to nothing gets the page's "may not list" sentence instead.
"""

# Fixtures are shared by importing them from sibling modules (the e2e conftest
# belongs to the harness), which ruff reads as unused imports and redefinitions.
# ruff: noqa: F401, F811

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from bananas.dashboard import DashboardSettings, create_app
from bananas.operator.meta import CRONSCHEDULE_PLURAL, GROUP, VERSION, WORKERPOOL_PLURAL

from .controlplane import KubeCluster
from .test_operator_chart import CHART, documents, helm, run
from .test_operator_rbac import apply_rendered, refused, service_account_kubeconfig
from .test_operator_workerpool import crds

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

POOL_STATUS: dict[str, Any] = {
    "replicas": 3,
    "readyReplicas": 2,
    "desiredReplicas": 3,
    "queued": 41,
    "inFlight": 6,
    "conditions": [
        {
            "type": "Ready",
            "status": "False",
            "reason": "RollingOut",
            "message": "2 of 3 pods ready",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        },
        {
            "type": "Scaling",
            "status": "True",
            "reason": "ScalingUp",
            "message": "queue depth 41",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        },
    ],
    "autoscaler": {
        "history": [
            {"replicas": 1, "from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:01:00Z"},
            {"replicas": 3, "from": "2026-01-01T00:01:30Z", "to": "2026-01-01T00:02:00Z"},
        ],
        "changes": [{"at": "2026-01-01T00:01:30Z", "delta": 2}],
        "lastActiveTime": "2026-01-01T00:02:00Z",
    },
}


async def _custom(api: client.ApiClient, namespace: str) -> client.CustomObjectsApi:
    custom = client.CustomObjectsApi(api)
    await custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        WORKERPOOL_PLURAL,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "WorkerPool",
            "metadata": {"name": "email"},
            "spec": {
                "image": "bananas:e2e",
                "app": "app.tasks",
                "routingKeys": ["email"],
                "autoscaling": {"minReplicas": 1, "maxReplicas": 5},
            },
        },
    )
    await custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        WORKERPOOL_PLURAL,
        "email",
        {"status": POOL_STATUS},
        _content_type="application/merge-patch+json",
    )
    await custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        CRONSCHEDULE_PLURAL,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "CronSchedule",
            "metadata": {"name": "nightly"},
            "spec": {"schedule": "0 3 * * *", "timeZone": "Europe/Berlin", "job": "cleanup"},
        },
    )
    return custom


@pytest.fixture
async def reader_kubeconfig(
    kube_cluster: KubeCluster, kube_api: client.ApiClient, namespace: str, tmp_path: Path
) -> AsyncIterator[Path]:
    """The chart's dashboard RBAC for a release in ``namespace``, applied as rendered,
    and a kubeconfig with its ServiceAccount's token."""
    rendered = run(
        helm(), "template", "e2e", str(CHART),
        "--namespace", namespace,
        "--set", "dashboard.enabled=true",
        "--set", "dashboard.auth.adminTokens={t}",
        "--show-only", "templates/dashboard/rbac.yaml",
    )  # fmt: skip
    docs = documents(rendered)
    assert sorted(d["kind"] for d in docs) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "ServiceAccount",
    ]
    # Names are per release; the binding is cluster-wide, so make it this test's own.
    for d in docs:
        if d["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            d["metadata"]["name"] += f"-{namespace}"
        if d["kind"] == "ClusterRoleBinding":
            d["roleRef"]["name"] += f"-{namespace}"
    for d in docs:
        await apply_rendered(kube_api, d)
    account = next(d for d in docs if d["kind"] == "ServiceAccount")["metadata"]["name"]
    try:
        yield await service_account_kubeconfig(kube_cluster, kube_api, namespace, account, tmp_path)
    finally:
        rbac = client.RbacAuthorizationV1Api(kube_api)
        for d in docs:
            with contextlib.suppress(ApiException):
                if d["kind"] == "ClusterRole":
                    await rbac.delete_cluster_role(d["metadata"]["name"])
                elif d["kind"] == "ClusterRoleBinding":
                    await rbac.delete_cluster_role_binding(d["metadata"]["name"])


async def _dashboard_get(kubeconfig: Path, path: str, **settings: Any) -> httpx.Response:
    app = create_app(
        DashboardSettings(redis_url="redis://127.0.0.1:1", kubeconfig=str(kubeconfig), **settings)
    )
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dash") as http:
            return await http.get(path)
    finally:
        await app.state.dashboard.kube.close()


async def test_the_page_lists_pools_and_schedules_with_the_charts_read_only_rbac(
    kube_cluster: KubeCluster,
    kube_api: client.ApiClient,
    namespace: str,
    crds: None,
    reader_kubeconfig: Path,
) -> None:
    await _custom(kube_api, namespace)
    reply = await _dashboard_get(reader_kubeconfig, "/api/kubernetes")
    assert reply.status_code == 200
    view = reply.json()
    assert view["available"] is True, view
    [pool] = [p for p in view["pools"] if p["namespace"] == namespace]
    assert (pool["name"], pool["routing_keys"], pool["min_replicas"], pool["max_replicas"]) == (
        "email",
        ["email"],
        1,
        5,
    )
    assert (pool["replicas"], pool["ready_replicas"], pool["desired_replicas"]) == (3, 2, 3)
    assert (pool["queued"], pool["in_flight"]) == (41, 6)
    assert [(c["type"], c["status"], c["tone"]) for c in pool["conditions"]] == [
        ("Ready", "False", "bad"),
        ("Scaling", "True", "warn"),
    ]
    assert [r["replicas"] for r in pool["recommendations"]] == [3, 1], "newest first"
    assert pool["changes"] == [{"at": "2026-01-01T00:01:30Z", "delta": 2}]
    [cron] = [c for c in view["crons"] if c["namespace"] == namespace]
    assert (cron["name"], cron["schedule"], cron["time_zone"], cron["job"]) == (
        "nightly",
        "0 3 * * *",
        "Europe/Berlin",
        "cleanup",
    )
    page = (await _dashboard_get(reader_kubeconfig, "/kubernetes")).text
    assert f'data-pool="{namespace}/email"' in page and "+2 pod(s) at" in page
    assert f'data-cron="{namespace}/nightly"' in page

    # Namespaced listing works with the same account, and the account cannot write.
    scoped = await _dashboard_get(
        reader_kubeconfig, "/api/kubernetes", kube_namespaces=(namespace,)
    )
    assert [p["name"] for p in scoped.json()["pools"]] == ["email"]
    api = await _api(reader_kubeconfig)
    try:
        custom = client.CustomObjectsApi(api)
        assert await refused(
            custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                WORKERPOOL_PLURAL,
                "email",
                {"spec": {"concurrency": 9}},
                _content_type="application/merge-patch+json",
            )
        )
        assert await refused(
            custom.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, CRONSCHEDULE_PLURAL, "nightly"
            )
        )
    finally:
        await api.close()


async def _api(kubeconfig: Path) -> client.ApiClient:
    from kubernetes_asyncio import config

    return await config.new_client_from_config(config_file=str(kubeconfig))


async def test_without_rbac_the_page_says_it_may_not_list(
    kube_cluster: KubeCluster,
    kube_api: client.ApiClient,
    namespace: str,
    crds: None,
    tmp_path: Path,
) -> None:
    await client.CoreV1Api(kube_api).create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="nobody"))
    )
    kubeconfig = await service_account_kubeconfig(
        kube_cluster, kube_api, namespace, "nobody", tmp_path
    )
    view = (await _dashboard_get(kubeconfig, "/api/kubernetes")).json()
    assert view["available"] is False
    assert "may not list WorkerPools" in view["reason"] and "403" in view["reason"]
    page = (await _dashboard_get(kubeconfig, "/kubernetes")).text
    assert 'id="kube-unavailable"' in page and "may not list WorkerPools" in page

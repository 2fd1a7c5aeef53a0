"""What a cluster user applies, checked by the API server: the Helm chart and kustomize.

``helm template`` and ``kubectl kustomize`` render; every object rendered is
then sent to the API server as a server-side-apply dry run, so the server's
own validation (schemas, CRD structural rules, RBAC object shapes) judges it
without anything being created. The helm binary comes from the control-plane
cache (``hack/controlplane.sh`` builds it), ``$KUBEBUILDER_ASSETS`` or PATH.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from .conftest import in_ci
from .controlplane import REPO_ROOT, cache_dir

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CHART = REPO_ROOT / "charts" / "bananas"
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


def find_helm() -> str | None:
    candidates = [shutil.which("helm")]
    if assets := os.environ.get("KUBEBUILDER_ASSETS"):
        candidates.append(str(Path(assets) / "helm"))
    # hack/controlplane.sh's cache (BANANAS_CACHE, else <repo>/.cache), newest version first.
    candidates += sorted(glob.glob(str(cache_dir() / "*" / "bin" / "helm")), reverse=True)
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def helm() -> str:
    found = find_helm()
    if found is None:
        if in_ci():
            pytest.fail("no helm binary (hack/controlplane.sh helm builds one)")
        pytest.skip("no helm binary: run hack/controlplane.sh helm, or put helm on PATH")
    return found


def run(*args: str) -> str:
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stderr}"
    return result.stdout


def documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def resource_path(obj: dict[str, Any], namespace: str) -> str:
    api_version, kind = obj["apiVersion"], obj["kind"]
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    plural = kind.lower() + "s"
    name = obj["metadata"]["name"]
    if kind in CLUSTER_SCOPED:
        return f"{base}/{plural}/{name}"
    ns = obj["metadata"].get("namespace") or namespace
    return f"{base}/namespaces/{ns}/{plural}/{name}"


async def dry_run_apply(api: client.ApiClient, obj: dict[str, Any], namespace: str) -> None:
    """Server-side apply ``obj`` with dryRun=All; raises AssertionError with the server's words."""
    try:
        await api.call_api(
            resource_path(obj, namespace),
            "PATCH",
            query_params=[("dryRun", "All"), ("fieldManager", "bananas-e2e"), ("force", "true")],
            header_params={
                "Content-Type": "application/apply-patch+yaml",
                "Accept": "application/json",
            },
            body=obj,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _return_http_data_only=True,
        )
    except ApiException as exc:
        message = json.loads(exc.body).get("message") if exc.body else exc.reason
        raise AssertionError(f"{obj['kind']} {obj['metadata']['name']}: {message}") from None


async def dry_run_all(api: client.ApiClient, docs: list[dict[str, Any]], namespace: str) -> None:
    # CRDs first: a dry run does not create them, but ours are installed already.
    for obj in sorted(docs, key=lambda d: d["kind"] != "CustomResourceDefinition"):
        await dry_run_apply(api, obj, namespace)


@pytest.fixture
async def installed_crds(kube_api: client.ApiClient) -> None:
    from bananas.operator.testing import apply_crds

    await apply_crds(kube_api, REPO_ROOT / "crds")


@pytest.mark.parametrize(
    "values",
    [
        [],
        ["--set", "redis.enabled=true", "--set", "operator.watchNamespaces={a,b}"],
        [
            "--set",
            "crds.create=false",
            "--set",
            "test.enabled=false",
            "--set",
            "redis.persistence.enabled=false",
            "--set",
            "redis.enabled=true",
        ],
        [
            "--set",
            "redis.enabled=true",
            "--set",
            "dashboard.enabled=true",
            "--set",
            "dashboard.auth.adminTokens={a-token}",
            "--set",
            "dashboard.ingress.enabled=true",
            "--set",
            "dashboard.ingress.tlsSecret=dashboard-tls",
        ],
    ],
    ids=["defaults", "with-redis", "no-crds", "with-dashboard"],
)
async def test_helm_template_passes_a_server_dry_run(
    kube_api: client.ApiClient, namespace: str, installed_crds: None, values: list[str]
) -> None:
    binary = helm()
    run(binary, "lint", str(CHART), *values)
    rendered = run(binary, "template", "e2e", str(CHART), "--namespace", namespace, *values)
    docs = documents(rendered)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "ClusterRole", "ConfigMap", "Service"} <= kinds
    assert ("CustomResourceDefinition" in kinds) is ("crds.create=false" not in values)
    await dry_run_all(kube_api, docs, namespace)


def test_helm_rejects_values_outside_the_schema() -> None:
    binary = helm()
    result = subprocess.run(
        [binary, "template", "e2e", str(CHART), "--set", "operator.replicaCount=2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "replicaCount" in result.stderr


def test_chart_crds_keep_their_resource_policy() -> None:
    docs = documents(run(helm(), "template", "e2e", str(CHART)))
    crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    assert len(crds) == 2
    for crd in crds:
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


@pytest.fixture
async def system_namespaces(kube_api: client.ApiClient) -> AsyncIterator[list[str]]:
    """bananas-system and bananas-examples exist, for the kustomize dry runs.

    The ones this fixture had to create are deleted afterwards.
    """
    core = client.CoreV1Api(kube_api)
    names, created = ["bananas-system", "bananas-examples"], []
    for name in names:
        meta = client.V1ObjectMeta(name=name, labels={"bananas.dev/e2e": "true"})
        try:
            await core.create_namespace(client.V1Namespace(metadata=meta))
            created.append(name)
        except ApiException as exc:
            if exc.status != 409:
                raise
    try:
        yield names
    finally:
        for name in created:
            try:
                await core.delete_namespace(name)
            except ApiException as exc:
                if exc.status != 404:
                    raise


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) not installed")
@pytest.mark.parametrize(
    "directory", ["manifests", "manifests/redis", "manifests/examples", "manifests/dashboard"]
)
async def test_kustomize_passes_a_server_dry_run(
    kube_api: client.ApiClient,
    namespace: str,
    installed_crds: None,
    system_namespaces: list[str],
    directory: str,
) -> None:
    docs = documents(run("kubectl", "kustomize", str(REPO_ROOT / directory)))
    assert docs
    await dry_run_all(kube_api, docs, namespace)

"""The process kubelet itself, on plain pods: environment, restarts, SIGTERM then SIGKILL.

These pods run ``python -c ...`` from a Bananas image (the process kubelet
runs any command of a Bananas image), so the test controls exactly what the
process does. Local pod tier only: on a real cluster there is no process
kubelet to check.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from bananas.operator.testing import eventually

from .conftest import PodTierCluster
from .podtier import PLAIN_NODE, KubeletEvent

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

IMAGE = "bananas:e2e"

_SHOW_ENV = """
import json, os, sys
keys = ["POD_NAME", "POD_NAMESPACE", "NODE", "FROM_SECRET", "FROM_CONFIGMAP", "CM_KEY",
        "EXPANDED", "METRICS_PORT", "KUBECONFIG"]
print("ENV " + json.dumps({k: os.environ.get(k) for k in keys} | {"argv": sys.argv[1:]}))
sys.stdout.flush()
import time
time.sleep(600)
"""

_IGNORE_TERM = """
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: print("TERM ignored", flush=True))
print("up", flush=True)
time.sleep(600)
"""


def pod(name: str, code: str, *, env: list[dict[str, Any]] | None = None, **spec: Any) -> Any:
    container: dict[str, Any] = {
        "name": "main",
        "image": IMAGE,
        "command": ["python", "-c", code],
        "env": env or [],
    }
    if "args" in spec:
        container["args"] = spec.pop("args")
    if "ports" in spec:
        container["ports"] = spec.pop("ports")
    if "envFrom" in spec:
        container["envFrom"] = spec.pop("envFrom")
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [container], **spec},
    }


async def default_account(core: client.CoreV1Api, namespace: str) -> None:
    """Pods are refused until the ServiceAccount controller made ``default``."""

    async def made() -> bool:
        try:
            await core.read_namespaced_service_account("default", namespace)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    await eventually(made, what=f"the default ServiceAccount of {namespace}")


async def wait_event(tier: Any, namespace: str, pod_name: str, event: str) -> KubeletEvent:
    async def found() -> KubeletEvent | None:
        for e in tier.events(namespace):
            if e.pod == pod_name and e.event == event:
                return e
        return None

    result: KubeletEvent = await eventually(found, what=f"{event} of {pod_name}")
    return result


async def test_the_process_gets_the_environment_a_kubelet_would_give(
    pod_tier: PodTierCluster, kube_api: client.ApiClient, namespace: str
) -> None:
    tier = pod_tier.require_local("the process kubelet's own behaviour")
    core = client.CoreV1Api(kube_api)
    await default_account(core, namespace)
    await core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="s"),
            data={"k": base64.b64encode(b"secret-value").decode()},
        ),
    )
    await core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c"), data={"CM_KEY": "v"})
    )
    env = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        {
            "name": "FROM_CONFIGMAP",
            "valueFrom": {"configMapKeyRef": {"name": "c", "key": "CM_KEY"}},
        },
        {"name": "EXPANDED", "value": "$(POD_NAME)@$(NODE)"},
        {"name": "METRICS_PORT", "value": "8000"},
    ]
    body = pod(
        "env",
        _SHOW_ENV,
        env=env,
        args=["$(POD_NAMESPACE)"],
        ports=[{"containerPort": 8000}],
        envFrom=[{"configMapRef": {"name": "c"}}],
    )
    await core.create_namespaced_pod(namespace, body)
    started = await wait_event(tier, namespace, "env", "started")
    port = started.raw["ports"]["8000"]

    async def printed() -> dict[str, Any] | None:
        for line in tier.pod_log(namespace, "env").splitlines():
            if line.startswith("ENV "):
                seen: dict[str, Any] = json.loads(line[4:])
                return seen
        return None

    seen = await eventually(printed, what="the process's environment in its log")
    assert seen["POD_NAME"] == "env" and seen["POD_NAMESPACE"] == namespace
    assert seen["NODE"] == PLAIN_NODE
    assert seen["FROM_SECRET"] == "secret-value" and seen["FROM_CONFIGMAP"] == "v"
    assert seen["CM_KEY"] == "v"  # envFrom
    assert seen["EXPANDED"] == f"env@{PLAIN_NODE}"
    assert seen["argv"] == [namespace]  # $(VAR) in args
    assert seen["METRICS_PORT"] == str(port) != "8000"
    assert seen["KUBECONFIG"] and seen["KUBECONFIG"].endswith("serviceaccount.kubeconfig")
    # No readiness probe: ready once started.
    ready = await core.read_namespaced_pod("env", namespace)
    assert any(c.type == "Ready" and c.status == "True" for c in ready.status.conditions or [])


async def test_sigterm_then_sigkill_at_the_end_of_the_grace_period(
    pod_tier: PodTierCluster, kube_api: client.ApiClient, namespace: str
) -> None:
    tier = pod_tier.require_local("the process kubelet's own behaviour")
    core = client.CoreV1Api(kube_api)
    await default_account(core, namespace)
    await core.create_namespaced_pod(
        namespace, pod("stubborn", _IGNORE_TERM, terminationGracePeriodSeconds=2)
    )
    await wait_event(tier, namespace, "stubborn", "ready")

    async def handler_installed() -> bool:
        return "up" in tier.pod_log(namespace, "stubborn").split()

    await eventually(handler_installed, what="the process ignoring SIGTERM")
    asked = time.monotonic()
    await core.delete_namespaced_pod("stubborn", namespace)

    async def gone() -> bool:
        try:
            await core.read_namespaced_pod("stubborn", namespace)
        except ApiException as exc:
            return exc.status == 404
        return False

    await eventually(gone, what="the pod removed after SIGKILL", timeout=30)
    took = time.monotonic() - asked
    kinds = [e.event for e in tier.events(namespace) if e.pod == "stubborn"]
    assert kinds[-4:] == ["sigterm", "sigkill", "exited", "removed"], kinds
    assert "TERM ignored" in tier.pod_log(namespace, "stubborn")
    assert 2.0 <= took < 15.0, took


async def test_a_crashing_process_is_restarted_with_a_count(
    pod_tier: PodTierCluster, kube_api: client.ApiClient, namespace: str
) -> None:
    tier = pod_tier.require_local("the process kubelet's own behaviour")
    core = client.CoreV1Api(kube_api)
    await default_account(core, namespace)
    await core.create_namespaced_pod(namespace, pod("crash", "raise SystemExit(7)"))

    async def restarted() -> client.V1Pod | None:
        found = await core.read_namespaced_pod("crash", namespace)
        statuses = found.status.container_statuses or []
        return found if statuses and statuses[0].restart_count >= 2 else None

    found = await eventually(restarted, what="two restarts of the crashing process")
    status = found.status.container_statuses[0]
    assert status.last_state.terminated.exit_code == 7
    assert not status.ready
    assert found.status.phase == "Running"
    crashes = [e.raw for e in tier.events(namespace) if e.event == "crashed"]
    assert len(crashes) >= 2 and all(c["code"] == 7 for c in crashes)

"""The operator as its container runs it: ``python -m bananas.operator``.

A child process with the container's settings (environment only): it must
answer kopf's liveness probe and serve Prometheus metrics, reconcile a
WorkerPool, log JSON, and exit 0 on SIGTERM as a pod's container must.
"""

# Fixtures are shared by importing them from sibling modules (the e2e conftest
# belongs to the harness), which ruff reads as unused imports and redefinitions.
# ruff: noqa: F401, F811

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from kubernetes_asyncio import client

from bananas.operator.testing import eventually
from tests.support.ports import free_port

from .controlplane import KubeCluster
from .redis_fixture import operator_redis
from .test_operator_workerpool import Pools, crds, redis_secret

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def get(url: str) -> tuple[int, str] | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


async def test_container_entry_point(
    kube_cluster_with_controllers: KubeCluster,
    namespace: str,
    crds: None,
    redis_secret: str,
    kube_api: client.ApiClient,
    tmp_path: Path,
) -> None:
    metrics, health = free_port(), free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(kube_cluster_with_controllers.kubeconfig),
        "WATCH_NAMESPACES": namespace,
        "METRICS_PORT": str(metrics),
        "LIVENESS_ENDPOINT": f"http://127.0.0.1:{health}/healthz",
        "LOG_FORMAT": "json",
        "RETRY_DELAY": "1",
    }
    log = tmp_path / "operator.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bananas.operator"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        async def healthy() -> tuple[int, str] | None:
            assert process.poll() is None, log.read_text()
            return get(f"http://127.0.0.1:{health}/healthz")

        status, _ = await eventually(healthy, what="kopf's liveness endpoint")
        assert status == 200

        pools = Pools(kube_api, namespace)
        await pools.create(
            "proc", {"image": "bananas:e2e", "app": "app.tasks", "autoscaling": {"pollInterval": 1}}
        )
        await eventually(
            lambda: pools.condition("proc", "RedisReachable", "True"),
            what="the pool reconciled by the child process",
        )

        async def scraped() -> str | None:
            found = get(f"http://127.0.0.1:{metrics}/metrics")
            if found is None or "bananas_operator_desired_replicas{" not in found[1]:
                return None
            return found[1]

        text = await eventually(scraped, what="the pool in the metrics")
        assert f'namespace="{namespace}",pool="proc"' in text
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
    output = log.read_text()
    assert code == 0, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines and all(line.startswith("{") for line in lines), output[:2000]
    assert any(json.loads(line).get("message") for line in lines)

"""The Deployment cache: what the watch says wins, in order, and a miss is an absence
only once the scope's list arrived."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from bananas.operator.deployment_cache import SELECTOR, DeploymentCache
from bananas.operator.kube import KubernetesApiError
from bananas.operator.meta import MANAGER, JsonObject


def dep(name: str, version: int, replicas: int = 1, namespace: str = "shop") -> JsonObject:
    return {
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "resourceVersion": str(version),
            "labels": {"app.kubernetes.io/managed-by": MANAGER},
            "managedFields": [{"manager": MANAGER}],
        },
        "spec": {"replicas": replicas, "template": {"spec": {"containers": []}}},
        "status": {"replicas": replicas},
    }


class ScriptedKube:
    """The list/watch half of the Kubernetes boundary, answering from a script:
    each watch plays the next batch of events (or raises it), then the server ends it."""

    def __init__(self, items: list[JsonObject], watches: list[Any]) -> None:
        self.items = items
        self.watches = watches
        self.lists = 0
        self.selectors: list[str] = []
        self.from_versions: list[str] = []
        self.done = asyncio.Event()

    async def list_deployments(
        self, namespace: str | None, selector: str
    ) -> tuple[list[JsonObject], str]:
        self.lists += 1
        self.selectors.append(selector)
        return list(self.items), "10"

    async def watch_deployments(
        self, namespace: str | None, selector: str, resource_version: str, timeout: int
    ) -> AsyncIterator[tuple[str, JsonObject]]:
        self.from_versions.append(resource_version)
        if not self.watches:
            self.done.set()
            await asyncio.Event().wait()  # the last watch stays open
        batch = self.watches.pop(0)
        if isinstance(batch, BaseException):
            raise batch
        for event in batch:
            yield event


def test_put_keeps_the_newer_version_and_only_our_deployments() -> None:
    cache: Any = DeploymentCache(None, ("shop",))  # type: ignore[arg-type]
    assert cache.lookup("shop", "a") == (False, None)  # not listed yet: ask the API
    cache.put(dep("a", 5, replicas=2))
    cache.put(dep("a", 4, replicas=9))  # a late event of an older version
    known, obj = cache.lookup("shop", "a")
    assert known and obj["spec"]["replicas"] == 2
    assert "managedFields" not in obj["metadata"]
    assert obj["spec"] == {"replicas": 2} and obj["status"] == {"replicas": 2}  # no template
    stranger = dep("b", 1)
    stranger["metadata"]["labels"] = {}
    cache.put(stranger)
    assert cache.lookup("shop", "b") == (False, None)
    assert cache.lookup("elsewhere", "a") == (False, None)  # not a watched namespace


async def test_list_then_watch_then_relist_after_410() -> None:
    kube = ScriptedKube(
        [dep("a", 3), dep("gone", 4)],
        [
            [
                ("MODIFIED", dep("a", 11, replicas=3)),
                ("BOOKMARK", {"metadata": {"resourceVersion": "12"}}),
            ],
            [("DELETED", dep("gone", 13)), ("ADDED", dep("new", 14))],
            KubernetesApiError(410, "too old"),
        ],
    )
    cache = DeploymentCache(kube, ("shop",))  # type: ignore[arg-type]
    task = asyncio.create_task(cache.run())
    try:
        await asyncio.wait_for(kube.done.wait(), 5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert kube.selectors == [SELECTOR, SELECTOR]  # listed again after the 410
    assert kube.from_versions == ["10", "12", "14", "10"]
    assert cache.synced("shop")
    assert cache.lookup("shop", "missing") == (True, None)  # listed: a miss is an absence
    # the relist answered the original two again: "new" went, "gone" came back
    assert cache.lookup("shop", "new") == (True, None)
    known, obj = cache.lookup("shop", "gone")
    assert known and obj is not None
    assert cache.lookup("shop", "a")[1]["spec"]["replicas"] == 1  # type: ignore[index]

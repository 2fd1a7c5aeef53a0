"""The operator's Deployments, kept current by a watch instead of a GET per poll.

Every autoscaler poll needs its pool's Deployment (its size, its rollout), and
every CronSchedule sync the namespace's scheduler Deployment. Read with a GET
each time, an idle fleet of 1,000 pools polling every 15 s costs the API
server some 67 requests/s for answers that almost never change. Instead one
list-then-watch per watched namespace (one for the whole cluster when the
operator watches all of it) keeps every Deployment labelled
``app.kubernetes.io/managed-by=bananas-operator`` in memory, the way a
client-go informer does; the selector is applied by the API server, so
Deployments that are not ours are never sent.

- **Reads** (:meth:`DeploymentCache.lookup`) answer from memory. Once a scope's
  list has arrived and its watch runs, a Deployment missing from the map does
  not exist (as far as the operator is concerned: one without our label is
  not ours, and applying ours over it takes it over). Before that, or while
  the watch is broken, the answer is "unknown" and the caller falls back to a
  GET (:meth:`~bananas.operator.context.OperatorContext.deployment`).
- **Writes** still go through the API (server-side apply); the object the API
  returns is put in the map at once (:meth:`DeploymentCache.put`), so the next
  poll does not wait for the watch event to see its own write.
- An older object never replaces a newer one: resourceVersions the API server
  hands out are etcd revisions, compared as integers when both are integers
  (an opaque one always wins, as the watch's order is then the only guide).
- A watch the server ends (every ``WATCH_TIMEOUT`` seconds) is reopened from
  the last resourceVersion seen (bookmarks keep it fresh); a 410 ("too old")
  relists; any other failure marks the scope unknown and retries after
  ``RETRY_SECONDS``.

Only what the operator reads is stored: the metadata without ``managedFields``
(most of a Deployment's bytes), ``spec.replicas`` and the status. The pod
template, the rest of a Deployment's size, is what the operator renders and
applies, never what it reads back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Final

from bananas.operator.kube import Kube, KubernetesApiError
from bananas.operator.meta import MANAGER, JsonObject

logger = logging.getLogger(__name__)

#: The label selector of the Deployments the operator writes (pools' and schedulers').
MANAGED_BY: Final = "app.kubernetes.io/managed-by"
SELECTOR: Final = f"{MANAGED_BY}={MANAGER}"
#: Seconds the API server keeps one watch open before the cache reopens it.
WATCH_TIMEOUT: Final = 300
#: Seconds before a failed list or watch is tried again.
RETRY_SECONDS: Final = 5.0
#: The scope key of a cluster-wide watch.
CLUSTER: Final = ""


def _key(obj: JsonObject) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _version(obj: JsonObject) -> int | None:
    raw = (obj.get("metadata") or {}).get("resourceVersion")
    return int(raw) if isinstance(raw, str) and raw.isdigit() else None


def _trimmed(obj: JsonObject) -> JsonObject:
    meta = dict(obj.get("metadata") or {})
    meta.pop("managedFields", None)
    kept: JsonObject = {k: obj[k] for k in ("apiVersion", "kind", "status") if k in obj}
    spec = obj.get("spec") or {}
    kept["metadata"] = meta
    kept["spec"] = {"replicas": spec["replicas"]} if "replicas" in spec else {}
    return kept


class DeploymentCache:
    """Deployments by (namespace, name), fed by a watch per scope; run it with :meth:`run`."""

    def __init__(self, kube: Kube, namespaces: Iterable[str] = ()) -> None:
        self.kube = kube
        #: The namespaces watched, or the whole cluster (:data:`CLUSTER`) when none.
        self.scopes: tuple[str, ...] = tuple(namespaces) or (CLUSTER,)
        self._objects: dict[tuple[str, str], JsonObject] = {}
        #: Scopes whose list arrived and whose watch runs: a miss there is an absence.
        self._synced: set[str] = set()

    def _scope_of(self, namespace: str) -> str | None:
        if self.scopes == (CLUSTER,):
            return CLUSTER
        return namespace if namespace in self.scopes else None

    def synced(self, namespace: str) -> bool:
        """True when a miss for ``namespace`` means the Deployment does not exist."""
        scope = self._scope_of(namespace)
        return scope is not None and scope in self._synced

    def lookup(self, namespace: str, name: str) -> tuple[bool, JsonObject | None]:
        """(known, Deployment): known is False when only the API can tell."""
        obj = self._objects.get((namespace, name))
        if obj is not None:
            return True, obj
        return self.synced(namespace), None

    def put(self, obj: JsonObject) -> None:
        """Store ``obj`` (as the API returned it) unless the map holds a newer version.

        A Deployment without the operator's label is not stored: the watch would never
        tell of its changes.
        """
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if labels.get(MANAGED_BY) != MANAGER:
            return
        key = _key(obj)
        held = self._objects.get(key)
        if held is not None:
            old, new = _version(held), _version(obj)
            if old is not None and new is not None and new < old:
                return
        self._objects[key] = _trimmed(obj)

    def _forget(self, obj: JsonObject) -> None:
        self._objects.pop(_key(obj), None)

    def __len__(self) -> int:
        return len(self._objects)

    async def run(self) -> None:
        """Keep every scope current until cancelled."""
        async with asyncio.TaskGroup() as group:
            for scope in self.scopes:
                group.create_task(self._keep(scope), name=f"deployments:{scope or '*'}")

    async def _keep(self, scope: str) -> None:
        namespace = scope or None
        while True:
            try:
                version = await self._relist(scope, namespace)
                while version:
                    version = await self._watch(scope, namespace, version)
            except KubernetesApiError as exc:
                self._synced.discard(scope)
                if exc.status == 410:
                    continue  # the watch fell too far behind: list again at once
                logger.warning("Deployments of %s not watched: %s", scope or "*", exc)
            except Exception:  # a bug must not leave the cache believed current
                self._synced.discard(scope)
                logger.exception("Deployments of %s not watched", scope or "*")
            await asyncio.sleep(RETRY_SECONDS)

    async def _relist(self, scope: str, namespace: str | None) -> str:
        items, version = await self.kube.list_deployments(namespace, SELECTOR)
        listed = {_key(obj) for obj in items}
        for key in [k for k in self._objects if self._scope_of(k[0]) == scope]:
            if key not in listed:
                del self._objects[key]
        for obj in items:
            self._objects[_key(obj)] = _trimmed(obj)
        self._synced.add(scope)
        return version

    async def _watch(self, scope: str, namespace: str | None, version: str) -> str:
        """One watch from ``version``; returns the last resourceVersion seen."""
        async for kind, obj in self.kube.watch_deployments(
            namespace, SELECTOR, version, WATCH_TIMEOUT
        ):
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            if kind in ("ADDED", "MODIFIED"):
                self.put(obj)
            elif kind == "DELETED":
                self._forget(obj)
        return version


async def stop(task: asyncio.Task[None]) -> None:
    """Cancel a :meth:`DeploymentCache.run` task and wait for it."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

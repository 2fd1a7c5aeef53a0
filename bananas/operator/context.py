"""What every handler shares: settings, the Kubernetes and Redis clients, metrics.

One :class:`OperatorContext` per operator run, made before kopf starts and
handed to it as the memo (kopf copies the memo per object, so each handler
sees the same context plus per-object state such as its lock). Keeping the
clients out of module globals is what lets a test run an operator in-process,
against its own API server and Redis, and shut it down cleanly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from random import Random
from typing import Any

from kubernetes_asyncio import client as k8s

from bananas.operator.applied import digest, stamped, up_to_date
from bananas.operator.config import OperatorConfig
from bananas.operator.deployment_cache import DeploymentCache
from bananas.operator.kube import Kube, load_configuration
from bananas.operator.meta import JsonObject
from bananas.operator.metrics import Metrics
from bananas.operator.redis_clients import RedisClients
from bananas.operator.specs import RedisRef

#: Seconds one Redis round of the operator (stats, status) may take.
REDIS_TIMEOUT = 10.0


@dataclass
class OperatorContext:
    """The operator's shared state; build it with :meth:`create`, end it with :meth:`close`."""

    config: OperatorConfig
    configuration: k8s.Configuration
    kube: Kube
    redis: RedisClients = field(default_factory=RedisClients)
    metrics: Metrics = field(default_factory=Metrics)
    #: Unix time; tests may replace it.
    clock: Callable[[], float] = time.time
    #: The randomness of poll jitter; tests may seed it.
    random: Random = field(default_factory=Random)
    #: The operator's Deployments, watched (:meth:`deployment` reads them); None reads
    #: every Deployment with a GET.
    deployments: DeploymentCache | None = None
    _poll_slots: asyncio.Semaphore | None = field(default=None, init=False, repr=False)
    _cron_slots: asyncio.Semaphore | None = field(default=None, init=False, repr=False)
    #: Redis URLs read from Secrets: (namespace, secret, key) -> (URL, Unix time read).
    _urls: dict[tuple[str, str, str], tuple[str, float]] = field(
        default_factory=dict, init=False, repr=False
    )

    def poll_slots(self) -> asyncio.Semaphore:
        """The semaphore that bounds how many pools poll at once (``max_concurrent_polls``)."""
        if self._poll_slots is None:  # made on first use, inside the operator's event loop
            self._poll_slots = asyncio.Semaphore(self.config.max_concurrent_polls)
        return self._poll_slots

    def cron_slots(self) -> asyncio.Semaphore:
        """The same bound for CronSchedules' Redis rounds, apart from the pools': a new
        leader's 1,000 registrations and syncs must not queue its autoscalers behind them."""
        if self._cron_slots is None:
            self._cron_slots = asyncio.Semaphore(self.config.max_concurrent_polls)
        return self._cron_slots

    @classmethod
    async def create(cls, config: OperatorConfig) -> OperatorContext:
        """Load the Kubernetes credentials and make the clients.

        Raises :class:`bananas.operator.kube.KubernetesApiError` without credentials.
        """
        configuration = await load_configuration(config.kubeconfig)
        # The Deployment cache holds one watch per watched namespace (one for the cluster).
        kube = Kube.from_configuration(configuration, watches=max(1, len(config.namespaces)))
        return cls(
            config=config,
            configuration=configuration,
            kube=kube,
            deployments=DeploymentCache(kube, config.namespaces),
        )

    async def close(self) -> None:
        """Close the Kubernetes and Redis connections."""
        await self.redis.close()
        await self.kube.close()

    async def deployment(self, namespace: str, name: str) -> JsonObject | None:
        """The Deployment ``namespace/name`` from the watch, or (the watch cannot tell
        yet) from a GET; None when it does not exist. Raises ``KubernetesApiError``."""
        if self.deployments is not None:
            known, obj = self.deployments.lookup(namespace, name)
            if known:
                return obj
        obj = await self.kube.get_deployment(namespace, name)
        if obj is not None and self.deployments is not None:
            self.deployments.put(obj)
        return obj

    async def apply(self, obj: JsonObject, *, manager: str | None = None) -> JsonObject:
        """Server-side apply ``obj`` (:meth:`Kube.apply`); a Deployment as stored goes
        into the cache at once, so the next read sees it before the watch does."""
        stored = await self.kube.apply(obj, manager=manager)
        if obj["kind"] == "Deployment" and self.deployments is not None:
            self.deployments.put(stored)
        return stored

    async def apply_group(
        self, group: Sequence[JsonObject], *, manager: str | None = None
    ) -> JsonObject:
        """Apply ``group`` in order, its last member a Deployment, unless that Deployment
        shows the group applied as rendered already (:mod:`~bananas.operator.applied`);
        returns the Deployment as stored. Raises ``KubernetesApiError``."""
        *others, rendered = group
        value = digest(group)
        meta = rendered["metadata"]
        current = await self.deployment(meta["namespace"], meta["name"])
        if current is not None and up_to_date(current, rendered, value):
            self.metrics.applies.labels("unchanged").inc()
            return current
        for obj in others:
            await self.apply(obj, manager=manager)
        stored = await self.apply(stamped(rendered, value), manager=manager)
        self.metrics.applies.labels("applied").inc()
        return stored

    async def redis_url(self, namespace: str, ref: RedisRef) -> str:
        """The Redis URL a resource's Secret holds, read at most every ``secret_cache_seconds``.

        Pools and schedules of a namespace usually share one Secret, and a poll every 15 s
        per pool would otherwise be a Secret GET every 15 s per pool. Secrets are not
        watched (that takes ``list`` and ``watch`` on every Secret of the namespace, or of
        the cluster; see docs/kubernetes.md, "RBAC"): a changed Secret is seen within
        ``secret_cache_seconds``, at once after Redis failed (:meth:`forget_url`), and
        at once when the resource naming it is edited. Raises ``KubernetesApiError``
        (404: no such Secret or key).
        """
        key = (namespace, ref.secret_name, ref.key)
        cached = self._urls.get(key)
        now = self.clock()
        if cached is not None and now - cached[1] < self.config.secret_cache_seconds:
            return cached[0]
        url = await self.kube.read_secret_value(namespace, ref.secret_name, ref.key)
        self._urls[key] = (url, now)
        return url

    def forget_url(self, namespace: str, ref: RedisRef) -> None:
        """Drop a cached URL (Redis failed, or the resource naming the Secret was edited:
        the Secret may have moved on)."""
        self._urls.pop((namespace, ref.secret_name, ref.key), None)


def object_lock(memo: Any) -> asyncio.Lock:
    """The per-object lock that serialises a resource's handlers, timers and daemons."""
    lock = memo.get("lock")
    if not isinstance(lock, asyncio.Lock):
        lock = asyncio.Lock()
        memo["lock"] = lock
    return lock

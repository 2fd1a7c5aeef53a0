"""Scheduler leader election through a ``coordination.k8s.io/v1`` Lease.

:class:`KubernetesLeaseElector` implements :class:`bananas.worker_runtime.leader.LeaderElector`
the way client-go's ``leaderelection`` package does, reduced to what the
scheduler needs:

- **Acquire** when the Lease does not exist, has no holder (it was released),
  or has expired: ``renewTime + leaseDurationSeconds`` is in the past.
- **Renew** while this replica holds it: write a fresh ``renewTime``.
- **Fence**: ``leaseTransitions`` grows on every acquisition, and it is the
  fencing token. Creating the Lease counts as the first acquisition, so tokens
  start at 1, as the Redis elector's do.
- **Optimistic concurrency**: every write is a ``replace`` carrying the
  ``resourceVersion`` that was read, so of two standbys racing for an expired
  Lease exactly one wins; the other gets 409 Conflict and stays a standby.
- **Release** on shutdown: clear ``holderIdentity``, so a standby takes over at
  its next tick instead of waiting for the Lease to expire.

Transient failures (API errors, timeouts, network errors) never raise out of
:meth:`~KubernetesLeaseElector.acquire_or_renew` or
:meth:`~KubernetesLeaseElector.release`: this replica simply is not the leader
for that tick. The decision itself is the pure function :func:`plan`, so it
is tested without an API server.

Expiry compares ``renewTime`` written by the holder's clock with this
replica's clock, so clocks must agree to well within the lease duration (NTP
gives that; client-go avoids the comparison by timing observations locally,
at the cost of a full lease duration of waiting after every restart).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from bananas.errors import ConfigError
from bananas.kubeconfig import load_kube_configuration

logger = logging.getLogger(__name__)

_TRANSIENT = (ApiException, aiohttp.ClientError, asyncio.TimeoutError, OSError)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def format_micro_time(moment: datetime) -> str:
    """A ``metav1.MicroTime``: RFC 3339 in UTC with exactly six fractional digits."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class LeaseRecord:
    """The parts of a Lease the election reads."""

    holder: str | None
    renew_time: datetime | None
    duration: float | None
    transitions: int
    acquire_time: datetime | None = None
    resource_version: str | None = None

    def expired(self, now: datetime) -> bool:
        """True when the holder has not renewed within its lease duration."""
        if self.renew_time is None or self.duration is None:
            return True
        return self.renew_time + timedelta(seconds=self.duration) < now


class Action(enum.Enum):
    """What to do with the Lease on this tick."""

    CREATE = "create"  # no Lease yet: create it, holding it
    RENEW = "renew"  # we hold it: write a fresh renewTime
    ACQUIRE = "acquire"  # free or expired: take it over, bumping the transitions
    WAIT = "wait"  # someone else holds it: stand by


def plan(record: LeaseRecord | None, identity: str, now: datetime) -> Action:
    """Decide this tick's action from the Lease as read (None when it does not exist)."""
    if record is None:
        return Action.CREATE
    expired = record.expired(now)
    if record.holder == identity and not expired:
        return Action.RENEW
    if not record.holder or expired:
        return Action.ACQUIRE
    return Action.WAIT


def lease_body(
    name: str,
    identity: str | None,
    duration_seconds: int,
    now: datetime,
    *,
    transitions: int,
    acquire_time: datetime | None,
    resource_version: str | None = None,
) -> dict[str, Any]:
    """The Lease to write. ``identity=None`` releases it (no holder, no renew time)."""
    metadata: dict[str, Any] = {"name": name}
    if resource_version is not None:
        metadata["resourceVersion"] = resource_version
    spec: dict[str, Any] = {
        "holderIdentity": identity,
        "leaseDurationSeconds": duration_seconds,
        "leaseTransitions": transitions,
        "renewTime": format_micro_time(now) if identity else None,
        "acquireTime": format_micro_time(acquire_time) if acquire_time else None,
    }
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": spec,
    }


def _raw(body: dict[str, Any]) -> Any:
    # The client sends a dict as it is; a V1Lease would be serialised with
    # datetime.isoformat(), which drops the microseconds MicroTime insists on.
    return body


def _record(lease: Any) -> LeaseRecord:
    spec = lease.spec
    return LeaseRecord(
        holder=spec.holder_identity or None,
        renew_time=spec.renew_time,
        duration=float(spec.lease_duration_seconds) if spec.lease_duration_seconds else None,
        transitions=int(spec.lease_transitions or 0),
        acquire_time=spec.acquire_time,
        resource_version=lease.metadata.resource_version,
    )


class KubernetesLeaseElector:
    """Elects the scheduler leader with a Lease named ``name`` in ``namespace``.

    Credentials: an ``api_client`` you own, else a ``kubeconfig`` file, else the
    pod's service account (``in_cluster=True``), else the default kubeconfig
    (``in_cluster=None`` tries the service account first). The client is made
    on first use; :meth:`connect` makes it eagerly and reports bad credentials.
    """

    def __init__(
        self,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: float = 15.0,
        *,
        api_client: k8s.ApiClient | None = None,
        kubeconfig: str | None = None,
        in_cluster: bool | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if not identity:
            raise ConfigError("a leader identity (POD_NAME) is required")
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = float(lease_duration)
        self._duration_seconds = max(1, math.ceil(lease_duration))
        self._api = api_client
        self._owns_api = api_client is None
        self._kubeconfig = kubeconfig
        self._in_cluster = in_cluster
        self._clock = clock

    async def connect(self) -> None:
        """Load the credentials now. Raises :class:`ConfigError` when there are none."""
        if self._api is not None:
            return
        try:
            configuration = await load_kube_configuration(
                self._kubeconfig, in_cluster=self._in_cluster
            )
        except ConfigError as exc:
            raise ConfigError(f"leader election: {exc}") from exc
        self._api = k8s.ApiClient(configuration)

    async def close(self) -> None:
        """Close the API client if this elector made it."""
        if self._api is not None and self._owns_api:
            await self._api.close()
            self._api = None

    def _coordination(self) -> k8s.CoordinationV1Api:
        assert self._api is not None
        return k8s.CoordinationV1Api(self._api)

    async def _read(self) -> LeaseRecord | None:
        try:
            lease = await self._coordination().read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return _record(lease)

    async def acquire_or_renew(self) -> int | None:
        """Become or stay the leader; the fencing token while leading, None otherwise."""
        try:
            await self.connect()
            return await self._tick()
        except ConfigError as exc:
            logger.error("leader election unavailable: %s", exc)
        except ApiException as exc:
            if exc.status == 409:
                logger.debug("lease %s/%s: lost a race for it", self.namespace, self.name)
            else:
                logger.warning("lease %s/%s: API error %s", self.namespace, self.name, exc.status)
        except _TRANSIENT as exc:
            logger.warning("lease %s/%s: %s", self.namespace, self.name, exc)
        return None

    async def _tick(self) -> int | None:
        now = self._clock()
        record = await self._read()
        action = plan(record, self.identity, now)
        api = self._coordination()
        if action is Action.WAIT:
            return None
        if action is Action.CREATE:
            body = lease_body(
                self.name, self.identity, self._duration_seconds, now,
                transitions=1, acquire_time=now,
            )  # fmt: skip
            await api.create_namespaced_lease(self.namespace, _raw(body))
            logger.info("lease %s/%s: acquired (new), token 1", self.namespace, self.name)
            return 1
        assert record is not None
        renewing = action is Action.RENEW
        transitions = record.transitions if renewing else record.transitions + 1
        body = lease_body(
            self.name,
            self.identity,
            self._duration_seconds,
            now,
            transitions=transitions,
            acquire_time=record.acquire_time if renewing else now,
            resource_version=record.resource_version,
        )
        await api.replace_namespaced_lease(self.name, self.namespace, _raw(body))
        if not renewing:
            logger.info(
                "lease %s/%s: acquired from %r, token %d",
                self.namespace, self.name, record.holder, transitions,
            )  # fmt: skip
        return transitions

    async def release(self) -> None:
        """Clear the holder if it is this replica, so a standby takes over at once."""
        if self._api is None:
            return
        try:
            record = await self._read()
            if record is None or record.holder != self.identity:
                return
            body = lease_body(
                self.name,
                None,
                self._duration_seconds,
                self._clock(),
                transitions=record.transitions,
                acquire_time=None,
                resource_version=record.resource_version,
            )
            await self._coordination().replace_namespaced_lease(
                self.name, self.namespace, _raw(body)
            )
            logger.info("lease %s/%s: released", self.namespace, self.name)
        except _TRANSIENT as exc:
            logger.warning("lease %s/%s: release failed: %s", self.namespace, self.name, exc)

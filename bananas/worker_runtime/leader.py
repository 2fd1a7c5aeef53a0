"""Leader election for the scheduler: one active replica, any number of standbys.

A :class:`LeaderElector` answers one question on every tick: "am I the leader
now, and with which fencing token?". The token grows every time leadership
changes hands, so work stamped with an old token can be recognised as stale.
Two backends implement it: :class:`RedisLeaderElector` (a Redis key with an
expiry, here) and ``KubernetesLeaseElector`` (a ``coordination.k8s.io/v1``
Lease, in :mod:`bananas.kubelease`, which the operator shares).

Cron fires do not rely on the elector for correctness: a fire's job id is
derived from (schedule, slot), so even two leaders at once submit each slot
once. The elector keeps the standbys idle and the Redis traffic low.
"""

from __future__ import annotations

from typing import Protocol

from bananas.client import AsyncClient
from bananas.ops import Op
from bananas.worker_runtime.retry import RedisCaller


class LeaderElector(Protocol):
    """Elects one leader among the scheduler replicas."""

    #: Who this replica is (pod name, or host:pid).
    identity: str
    #: Seconds a leader keeps the lease without renewing it; failover takes at most this.
    lease_duration: float

    async def acquire_or_renew(self) -> int | None:
        """Try to become, or stay, the leader.

        Returns the fencing token while this replica leads, None otherwise.
        Must not raise on a transient backend failure: return None instead.
        """
        ...

    async def release(self) -> None:
        """Give up leadership at once (on shutdown), so a standby takes over without waiting."""
        ...

    async def close(self) -> None:
        """Free the elector's own resources (connections); called after :meth:`release`."""
        ...


class RedisLeaderElector:
    """A Redis key with an expiry as the lease; a counter beside it as the fencing token.

    ``acquire_or_renew`` is one script call: it takes the key when it is free, extends it
    while this identity holds it, and bumps the token on every change of holder.
    """

    def __init__(
        self, client: AsyncClient, name: str, identity: str, lease_duration: float = 15.0
    ) -> None:
        self.client = client
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self._redis = RedisCaller(client)

    async def acquire_or_renew(self) -> int | None:
        return await self._redis.attempt(self._lead(), "leader election on Redis")

    async def release(self) -> None:
        await self._redis.attempt(self._lead(release=True), "releasing the leader lock")

    def _lead(self, *, release: bool = False) -> Op[int | None]:
        lease_ms = int(self.lease_duration * 1000)
        return self.client.broker.lead(self.name, self.identity, lease_ms, release=release)

    async def close(self) -> None:
        """Nothing to free: the elector uses the worker's client."""

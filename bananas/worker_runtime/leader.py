"""Leader election for the scheduler: one active replica, any number of standbys.

A :class:`LeaderElector` answers one question on every tick: "am I the leader
now, and with which fencing token?". The token grows every time leadership
changes hands, so work stamped with an old token can be recognised as stale.
Two backends implement it: :class:`RedisLeaderElector` (a Redis key with an
expiry, here) and ``KubernetesLeaseElector`` (a ``coordination.k8s.io/v1``
Lease, in ``leader_kubernetes``).

Cron fires do not rely on the elector for correctness: a fire's job id is
derived from (schedule, slot), so even two leaders at once submit each slot
once. The elector keeps the standbys idle and the Redis traffic low.
"""

from __future__ import annotations

from typing import Protocol


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

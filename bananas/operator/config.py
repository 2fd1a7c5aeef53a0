"""The operator's own settings, read from its environment at start-up.

Everything a cluster admin may want to tune about the operator itself lives
here, typed and described, in the manner of kopf's ``OperatorSettings``.
:meth:`OperatorConfig.from_env` is the only place that reads the environment;
tests build an :class:`OperatorConfig` directly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from bananas.errors import ConfigError

DEFAULT_IMAGE = "ghcr.io/bananas-dev/bananas:0.1.0"


@dataclass(frozen=True)
class SchedulerSettings:
    """How the operator runs the scheduler Deployment of a namespace."""

    #: Image of the scheduler pods (``bananas scheduler``); the chart sets it to its own image.
    image: str = DEFAULT_IMAGE
    #: Scheduler pods; one leads (a coordination.k8s.io Lease), the others stand by.
    replicas: int = 2
    #: ClusterRole (installed with the operator) granting the Lease verbs; bound per namespace.
    cluster_role: str = "bananas-scheduler"
    #: Pull policy of the scheduler image (empty: the cluster's default).
    image_pull_policy: str = ""
    #: BANANAS_APP of the scheduler pods (a handler module in the scheduler image); empty
    #: leaves it unset, since a scheduler fires jobs by name and runs no handler.
    app: str = ""
    #: CPU request of a scheduler pod.
    cpu_request: str = "50m"
    #: Memory request and limit of a scheduler pod.
    memory: str = "128Mi"


@dataclass(frozen=True)
class LeaderElectionSettings:
    """One active operator among replicas, elected through a coordination.k8s.io Lease.

    The intervals follow client-go's leader election: the leader renews every
    ``retry_period`` and stops acting when it has not renewed for
    ``renew_deadline``; a standby takes the Lease over once it is
    ``lease_duration`` old (so ``renew_deadline < lease_duration``).
    """

    #: Elect a leader (LEADER_ELECTION=true); off, this process acts at once, alone.
    enabled: bool = False
    #: Namespace of the Lease (LEADER_ELECTION_NAMESPACE, else POD_NAMESPACE).
    namespace: str = ""
    #: Name of the Lease.
    name: str = "bananas-operator"
    #: This replica's identity in the Lease (POD_NAME; empty: the host name and pid).
    identity: str = ""
    #: Seconds a Lease stays valid after its last renewal.
    lease_duration: float = 15.0
    #: Seconds the leader may go without renewing before it stops acting.
    renew_deadline: float = 10.0
    #: Seconds between two attempts to acquire or renew.
    retry_period: float = 2.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LeaderElectionSettings:
        """Read LEADER_ELECTION, LEADER_ELECTION_NAMESPACE (or POD_NAMESPACE),
        LEADER_ELECTION_NAME, POD_NAME, LEASE_DURATION, RENEW_DEADLINE and RETRY_PERIOD.

        Raises :class:`ConfigError` for a bad value, or when the election is on
        without a namespace or with ``renew_deadline >= lease_duration``.
        """
        d = cls()
        settings = cls(
            enabled=_flag(env, "LEADER_ELECTION", d.enabled),
            namespace=env.get("LEADER_ELECTION_NAMESPACE") or env.get("POD_NAMESPACE", ""),
            name=env.get("LEADER_ELECTION_NAME") or d.name,
            identity=env.get("POD_NAME", ""),
            lease_duration=_number(env, "LEASE_DURATION", d.lease_duration),
            renew_deadline=_number(env, "RENEW_DEADLINE", d.renew_deadline),
            retry_period=_number(env, "RETRY_PERIOD", d.retry_period),
        )
        if settings.enabled:
            if not settings.namespace:
                raise ConfigError(
                    "LEADER_ELECTION=true needs LEADER_ELECTION_NAMESPACE or POD_NAMESPACE"
                )
            if not 0 < settings.retry_period < settings.renew_deadline < settings.lease_duration:
                raise ConfigError(
                    "leader election needs 0 < RETRY_PERIOD < RENEW_DEADLINE < LEASE_DURATION"
                )
        return settings


@dataclass(frozen=True)
class OperatorConfig:
    """Settings of the operator process."""

    #: Namespaces to watch; empty watches the whole cluster.
    namespaces: tuple[str, ...] = ()
    #: Path to a kubeconfig file; None uses the in-cluster service account, else ~/.kube/config.
    kubeconfig: str | None = None
    #: Seconds between two reads of a CronSchedule's state in Redis.
    cron_sync_interval: float = 15.0
    #: Seconds before retrying a reconcile that failed for a transient reason (Redis down, ...).
    retry_delay: float = 15.0
    #: Failed attempts at unregistering a deleted CronSchedule before its status and a
    #: Warning Event say it is stuck (it is retried for as long as it takes regardless).
    delete_retries: int = 5
    #: Seconds a Redis URL read from a Secret is reused before the Secret is read again
    #: (sooner when Redis fails or the resource naming the Secret is edited).
    secret_cache_seconds: float = 300.0
    #: Pools that poll Redis at once at most; the others wait their turn.
    max_concurrent_polls: int = 64
    #: Port of the Prometheus metrics endpoint; 0 disables it.
    metrics_port: int = 8080
    #: Address kopf's liveness endpoint listens on (``--liveness``); empty disables it.
    liveness_endpoint: str = "http://0.0.0.0:8081/healthz"
    #: The scheduler Deployments the operator manages.
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    #: Leader election among the operator's replicas.
    leader_election: LeaderElectionSettings = field(default_factory=LeaderElectionSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorConfig:
        """Build the settings from ``env`` (default ``os.environ``).

        Variables: WATCH_NAMESPACES (comma list), KUBECONFIG, CRON_SYNC_INTERVAL,
        RETRY_DELAY, SECRET_CACHE_SECONDS, MAX_CONCURRENT_POLLS, METRICS_PORT,
        LIVENESS_ENDPOINT, SCHEDULER_IMAGE, SCHEDULER_REPLICAS, SCHEDULER_CLUSTER_ROLE,
        SCHEDULER_IMAGE_PULL_POLICY and SCHEDULER_APP, and those of
        :meth:`LeaderElectionSettings.from_env`. Raises :class:`ConfigError` naming a
        bad value.
        """
        env = os.environ if env is None else env
        defaults = cls()
        sched = defaults.scheduler
        namespaces = tuple(
            ns.strip() for ns in env.get("WATCH_NAMESPACES", "").split(",") if ns.strip()
        )
        return cls(
            namespaces=namespaces,
            kubeconfig=env.get("KUBECONFIG") or None,
            cron_sync_interval=_number(env, "CRON_SYNC_INTERVAL", defaults.cron_sync_interval),
            retry_delay=_number(env, "RETRY_DELAY", defaults.retry_delay),
            secret_cache_seconds=_number(
                env, "SECRET_CACHE_SECONDS", defaults.secret_cache_seconds
            ),
            max_concurrent_polls=max(
                1, int(_number(env, "MAX_CONCURRENT_POLLS", defaults.max_concurrent_polls))
            ),
            metrics_port=int(_number(env, "METRICS_PORT", defaults.metrics_port)),
            liveness_endpoint=env.get("LIVENESS_ENDPOINT", defaults.liveness_endpoint),
            scheduler=SchedulerSettings(
                image=env.get("SCHEDULER_IMAGE", sched.image),
                replicas=int(_number(env, "SCHEDULER_REPLICAS", sched.replicas)),
                cluster_role=env.get("SCHEDULER_CLUSTER_ROLE", sched.cluster_role),
                image_pull_policy=env.get("SCHEDULER_IMAGE_PULL_POLICY", ""),
                app=env.get("SCHEDULER_APP", ""),
            ),
            leader_election=LeaderElectionSettings.from_env(env),
        )


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw not in ("true", "false", "1", "0"):
        raise ConfigError(f"{name}={raw!r} is not true or false")
    return raw in ("true", "1")


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise ConfigError(f"{name}={raw!r} must not be negative")
    return value

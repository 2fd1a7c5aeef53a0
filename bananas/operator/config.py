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
    #: Seconds a Redis URL read from a Secret is reused before the Secret is read again.
    secret_cache_seconds: float = 30.0
    #: Pools that poll Redis at once at most; the others wait their turn.
    max_concurrent_polls: int = 64
    #: Port of the Prometheus metrics endpoint; 0 disables it.
    metrics_port: int = 8080
    #: Address kopf's liveness endpoint listens on (``--liveness``); empty disables it.
    liveness_endpoint: str = "http://0.0.0.0:8081/healthz"
    #: The scheduler Deployments the operator manages.
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorConfig:
        """Build the settings from ``env`` (default ``os.environ``).

        Variables: WATCH_NAMESPACES (comma list), KUBECONFIG, CRON_SYNC_INTERVAL,
        RETRY_DELAY, SECRET_CACHE_SECONDS, MAX_CONCURRENT_POLLS, METRICS_PORT,
        LIVENESS_ENDPOINT, SCHEDULER_IMAGE, SCHEDULER_REPLICAS, SCHEDULER_CLUSTER_ROLE,
        SCHEDULER_IMAGE_PULL_POLICY and SCHEDULER_APP. Raises :class:`ConfigError` naming a
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
        )


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

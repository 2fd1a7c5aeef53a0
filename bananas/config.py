"""Settings read from the environment, with the seed's variable names.

:class:`Settings` is a typed dataclass with a sentence on every field. It is built at
the edge — ``Settings.from_env()`` in the CLI, or by hand in an application that
embeds a worker — and never read at import time. A bad value raises
:class:`bananas.ConfigError` naming the variable and the forms it accepts, so a
worker refuses to start rather than run misconfigured.

Durations take Go's forms (``500ms``, ``30s``, ``5m``, ``1h30m``) or plain seconds.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar

from bananas.connection import DEFAULT_URL

# Re-exported: config was their home before durations.py, and callers still import them here.
from bananas.durations import DURATION_FORMS as DURATION_FORMS
from bananas.durations import parse_duration as parse_duration
from bananas.errors import ConfigError
from bananas.eviction import CheckMode, parse_mode
from bananas.models import (
    DEFAULT_BACKOFF_CAP,
    DEFAULT_MAX_RESULT_BYTES,
    DEFAULT_MAX_RETRIES,
    PRIORITY_ORDER,
    Priority,
)
from bananas.routing import ROUTING_KEY_RULE, RoutingKey, is_valid_routing_key

T = TypeVar("T")


class WorkerMode(enum.StrEnum):
    """The seed's worker modes (``WORKER_MODE``); docs/worker.md explains each."""

    THIN = "thin"
    DEFAULT = "default"
    SPECIALIZED = "specialized"
    JOB_SPECIALIZED = "job-specialized"
    SCHEDULER_ONLY = "scheduler-only"


@dataclass(frozen=True)
class Settings:
    """Everything a worker or scheduler process is configured with."""

    #: Redis URL (``REDIS_URL``); see ``bananas.connection`` for the accepted forms.
    redis_url: str = DEFAULT_URL
    #: Jobs run at once by one worker process (``WORKER_CONCURRENCY``).
    concurrency: int = 10
    #: Default seconds a job may run when it has no timeout of its own (``JOB_TIMEOUT``).
    job_timeout: float = 300.0
    #: Default retries for jobs submitted through this process (``MAX_RETRIES``).
    max_retries: int = DEFAULT_MAX_RETRIES
    #: Routing keys served, in the order they are served (``WORKER_ROUTING_KEYS``).
    routing_keys: tuple[RoutingKey, ...] = ("default",)
    #: Priorities served, highest first (``WORKER_PRIORITIES``).
    priorities: tuple[Priority, ...] = PRIORITY_ORDER
    #: Handler names this worker runs; empty means all registered (``WORKER_JOB_TYPES``).
    job_types: tuple[str, ...] = ()
    #: What the process does (``WORKER_MODE``).
    mode: WorkerMode = WorkerMode.DEFAULT
    #: Log level name (``LOG_LEVEL``).
    log_level: str = "INFO"
    #: ``text`` or ``json`` (``LOG_FORMAT``).
    log_format: str = "text"
    #: Log one INFO line per job start, completion and failed attempt, on the logger
    #: ``bananas.jobs`` (``LOG_JOBS``); off by default, it costs a line per job.
    log_jobs: bool = False
    #: Longest sleep between checks of delayed jobs and cron (``SCHEDULER_INTERVAL``).
    scheduler_interval: float = 1.0
    #: Run the cron scheduler in this process, under leader election (``ENABLE_SCHEDULER``).
    enable_scheduler: bool = True
    #: Seconds in-flight jobs get to finish after SIGTERM (``SHUTDOWN_TIMEOUT``).
    shutdown_timeout: float = 30.0
    #: Seconds a fetched job stays leased without a heartbeat (``LEASE_DURATION``).
    lease_duration: float = 10.0
    #: Port of /metrics, /healthz and /readyz; 0 turns the server off (``METRICS_PORT``).
    metrics_port: int = 8000
    #: Prefix of every Redis key (``BANANAS_PREFIX``).
    prefix: str = "bananas"
    #: Module (or ``module:attribute``) holding the handler registry (``BANANAS_APP``).
    app: str = ""
    #: ``redis`` or ``kubernetes``: how scheduler replicas elect a leader (``LEADER_ELECTION``).
    leader_election: str = "redis"
    #: Name of the leader lock / Lease (``LEADER_LEASE_NAME``).
    leader_lease_name: str = "bananas-scheduler"
    #: Largest result a handler may return, in bytes (``MAX_RESULT_BYTES``).
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES
    #: Cap of the retry backoff in seconds (``RETRY_BACKOFF_MAX``).
    retry_backoff_max: float = DEFAULT_BACKOFF_CAP
    #: What to do when Redis' ``maxmemory-policy`` can evict queue keys
    #: (``EVICTION_POLICY_CHECK``: ``refuse`` to start, ``warn``, or ``off``; see
    #: :mod:`bananas.eviction`).
    eviction_policy_check: CheckMode = CheckMode.REFUSE
    #: Worker processes a ``bananas worker`` runs under one supervisor; ``auto`` in the
    #: environment means one per CPU (``WORKER_PROCESSES``). 1 runs no supervisor.
    processes: int = 1
    #: Jobs a worker process finishes before it drains and is replaced; 0: no limit
    #: (``WORKER_MAX_JOBS_PER_CHILD``). Only under a supervisor (``processes`` > 1).
    max_jobs_per_child: int = 0
    #: Resident memory in MiB past which a worker process drains and is replaced; 0: no
    #: limit (``WORKER_MAX_MEMORY_PER_CHILD``). Only under a supervisor.
    max_memory_per_child: int = 0
    #: Name of the pod this process runs in, when it runs in Kubernetes (``POD_NAME``).
    pod_name: str = ""
    #: Namespace of that pod (``POD_NAMESPACE``).
    pod_namespace: str = ""
    #: Extra options for the Redis connection (e.g. ``ssl_ca_certs``); not read from env.
    redis_options: dict[str, Any] = field(default_factory=dict)

    def with_changes(self, **changes: Any) -> Settings:
        """A copy with some fields replaced (CLI flags over environment; None is skipped).

        Plain values are accepted where a field has a richer type: ``mode="thin"``,
        ``routing_keys=["gpu"]``, ``priorities=["high"]``.
        """
        values = {k: v for k, v in changes.items() if v is not None}
        if "mode" in values:
            values["mode"] = WorkerMode(values["mode"])
        if "eviction_policy_check" in values:
            values["eviction_policy_check"] = CheckMode(values["eviction_policy_check"])
        for name in ("routing_keys", "job_types"):
            if name in values:
                values[name] = tuple(values[name])
        if "priorities" in values:
            chosen = {Priority(p) for p in values["priorities"]}
            values["priorities"] = tuple(p for p in PRIORITY_ORDER if p in chosen)
        return replace(self, **values)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every variable; raises :class:`ConfigError` naming the first bad one."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, (var, parse) in _ENV.items():
            raw = env.get(var)
            if raw is None or raw == "":
                continue
            values[name] = _read(var, raw, parse)
        ca = env.get("REDIS_CA_FILE")
        if ca:
            values["redis_options"] = {"ssl_ca_certs": ca}
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        """Cross-field rules; raises :class:`ConfigError`."""
        if self.mode is WorkerMode.JOB_SPECIALIZED and not self.job_types:
            raise ConfigError("WORKER_MODE=job-specialized needs WORKER_JOB_TYPES (a comma list)")
        if self.mode is WorkerMode.SPECIALIZED and self.routing_keys == ("default",):
            raise ConfigError(
                "WORKER_MODE=specialized needs WORKER_ROUTING_KEYS naming its routes (e.g. gpu)"
            )
        if self.lease_duration < 1:
            raise ConfigError("LEASE_DURATION must be at least 1s")
        if not self.job_timeout > 0:
            raise ConfigError("JOB_TIMEOUT must be more than 0 (every job would time out at once)")
        if self.processes < 1:
            raise ConfigError("WORKER_PROCESSES must be at least 1 (or auto)")
        if self.max_jobs_per_child < 0 or self.max_memory_per_child < 0:
            raise ConfigError(
                "WORKER_MAX_JOBS_PER_CHILD and WORKER_MAX_MEMORY_PER_CHILD must not be negative"
            )

    def to_env(self) -> dict[str, str]:
        """Every field that has a variable, written in the form ``from_env`` reads back.

        A supervisor hands its settings to its worker processes this way, so a child
        runs with exactly the flags and variables its parent was started with.
        """
        env = {}
        for name, var in ENV_VARS.items():
            value = getattr(self, name)
            if isinstance(value, tuple):
                text = ",".join(str(getattr(v, "value", v)) for v in value)
            elif isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, enum.Enum):
                text = str(value.value)
            else:
                text = repr(value) if isinstance(value, float) else str(value)
            env[var] = text
        return env


def _read(var: str, raw: str, parse: Callable[[str], T]) -> T:
    try:
        return parse(raw)
    except (ValueError, TypeError) as exc:
        forms = getattr(parse, "forms", "")
        raise ConfigError(f"{var}={raw!r} is not valid: {exc}; expected {forms}") from None


def _forms(text: str) -> Callable[[Callable[[str], T]], Callable[[str], T]]:
    def mark(fn: Callable[[str], T]) -> Callable[[str], T]:
        fn.forms = text  # type: ignore[attr-defined]
        return fn

    return mark


@_forms("a whole number >= 1")
def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


@_forms("a whole number >= 0")
def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must not be negative")
    return value


@_forms(DURATION_FORMS)
def _duration(raw: str) -> float:
    return parse_duration(raw)


@_forms(f"{DURATION_FORMS}, more than 0")
def _positive_duration(raw: str) -> float:
    seconds = parse_duration(raw)
    if seconds <= 0:
        raise ValueError("must be more than 0 (every job would time out at once)")
    return seconds


@_forms("true or false (also 1/0, yes/no, on/off)")
def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("not a boolean")


@_forms(f"a comma list of routing keys, each {ROUTING_KEY_RULE}")
def _routing_keys(raw: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    bad = [k for k in keys if not is_valid_routing_key(k)]
    if bad or not keys:
        raise ValueError(f"bad routing key(s) {bad}" if bad else "no routing key given")
    return keys


@_forms("a comma list of high, normal, low")
def _priorities(raw: str) -> tuple[Priority, ...]:
    items = tuple(Priority(p.strip().lower()) for p in raw.split(",") if p.strip())
    if not items:
        raise ValueError("no priority given")
    return tuple(p for p in PRIORITY_ORDER if p in items)


@_forms("a comma list of handler names")
def _names(raw: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in raw.split(",") if n.strip())


@_forms(", ".join(m.value for m in WorkerMode))
def _mode(raw: str) -> WorkerMode:
    return WorkerMode(raw.strip().lower())


@_forms("DEBUG, INFO, WARNING, ERROR or CRITICAL")
def _level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL"):
        raise ValueError("unknown level")
    return "WARNING" if level == "WARN" else level


@_forms("text or json")
def _log_format(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("text", "json"):
        raise ValueError("unknown format")
    return value


@_forms("redis or kubernetes")
def _election(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("redis", "kubernetes"):
        raise ValueError("unknown backend")
    return value


@_forms("a whole number >= 1, or auto (one per CPU)")
def _processes(raw: str) -> int:
    if raw.strip().lower() == "auto":
        return cpu_count()
    return _positive_int(raw)


def cpu_count() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@_forms("any text")
def _text(raw: str) -> str:
    return raw.strip()


@_forms("a port number 0-65535 (0: off)")
def _port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError("out of range")
    return value


@_forms(", ".join(m.value for m in CheckMode))
def _check_mode(raw: str) -> CheckMode:
    return parse_mode(raw)


_ENV: dict[str, tuple[str, Callable[[str], Any]]] = {
    "redis_url": ("REDIS_URL", _text),
    "concurrency": ("WORKER_CONCURRENCY", _positive_int),
    "job_timeout": ("JOB_TIMEOUT", _positive_duration),
    "max_retries": ("MAX_RETRIES", _non_negative_int),
    "routing_keys": ("WORKER_ROUTING_KEYS", _routing_keys),
    "priorities": ("WORKER_PRIORITIES", _priorities),
    "job_types": ("WORKER_JOB_TYPES", _names),
    "mode": ("WORKER_MODE", _mode),
    "log_level": ("LOG_LEVEL", _level),
    "log_format": ("LOG_FORMAT", _log_format),
    "log_jobs": ("LOG_JOBS", _bool),
    "scheduler_interval": ("SCHEDULER_INTERVAL", _duration),
    "enable_scheduler": ("ENABLE_SCHEDULER", _bool),
    "shutdown_timeout": ("SHUTDOWN_TIMEOUT", _duration),
    "lease_duration": ("LEASE_DURATION", _duration),
    "metrics_port": ("METRICS_PORT", _port),
    "prefix": ("BANANAS_PREFIX", _text),
    "app": ("BANANAS_APP", _text),
    "leader_election": ("LEADER_ELECTION", _election),
    "leader_lease_name": ("LEADER_LEASE_NAME", _text),
    "max_result_bytes": ("MAX_RESULT_BYTES", _positive_int),
    "retry_backoff_max": ("RETRY_BACKOFF_MAX", _duration),
    "eviction_policy_check": ("EVICTION_POLICY_CHECK", _check_mode),
    "processes": ("WORKER_PROCESSES", _processes),
    "max_jobs_per_child": ("WORKER_MAX_JOBS_PER_CHILD", _non_negative_int),
    "max_memory_per_child": ("WORKER_MAX_MEMORY_PER_CHILD", _non_negative_int),
    "pod_name": ("POD_NAME", _text),
    "pod_namespace": ("POD_NAMESPACE", _text),
}

#: Environment variable of each settings field: the contract between a process's
#: environment and :meth:`Settings.from_env`, used by the CLI's help and by the
#: operator, which renders pods' environments from it (never from literals).
ENV_VARS = {name: var for name, (var, _) in _ENV.items()}
assert set(ENV_VARS) <= {f.name for f in fields(Settings)}

#: A value of an environment entry: text as it is, numbers and booleans spelled the way
#: :meth:`Settings.from_env` reads them, sequences as comma lists, enums by value.
EnvValue = str | int | float | bool | enum.Enum | tuple[Any, ...] | list[Any]


def env_var(name: str) -> str:
    """The environment variable of the settings field ``name``; ``KeyError`` for none."""
    return ENV_VARS[name]


def _env_text(value: EnvValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, tuple | list):
        return ",".join(_env_text(item) for item in value)
    return str(value)


def render_env(values: Mapping[str, EnvValue]) -> list[dict[str, str]]:
    """Kubernetes ``env`` entries (``name``/``value``) for settings fields, in the given order.

    ``values`` maps a :class:`Settings` field name to its value; ``KeyError`` names a
    field that has no environment variable.
    """
    return [{"name": env_var(name), "value": _env_text(value)} for name, value in values.items()]

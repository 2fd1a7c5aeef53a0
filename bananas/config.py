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
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar

from bananas.connection import DEFAULT_URL
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

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
DURATION_FORMS = "a Go duration like 500ms, 30s, 5m or 1h30m, or a number of seconds"


def parse_duration(text: str) -> float:
    """Parse ``30s`` / ``5m`` / ``1h30m`` / ``250ms`` / ``12.5`` into seconds.

    Raises ValueError on anything else (including negative values).
    """
    text = text.strip()
    if not text:
        raise ValueError("empty duration")
    try:
        seconds = float(text)
    except ValueError:
        pos, seconds = 0, 0.0
        for match in _DURATION_RE.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if pos != len(text):
            raise ValueError(f"not a duration: {text!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"not a non-negative duration: {text!r}")
    return seconds


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
    "job_timeout": ("JOB_TIMEOUT", _duration),
    "max_retries": ("MAX_RETRIES", _non_negative_int),
    "routing_keys": ("WORKER_ROUTING_KEYS", _routing_keys),
    "priorities": ("WORKER_PRIORITIES", _priorities),
    "job_types": ("WORKER_JOB_TYPES", _names),
    "mode": ("WORKER_MODE", _mode),
    "log_level": ("LOG_LEVEL", _level),
    "log_format": ("LOG_FORMAT", _log_format),
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
}

#: Environment variable of each settings field, for docs and CLI help.
ENV_VARS = {name: var for name, (var, _) in _ENV.items()}
assert set(ENV_VARS) <= {f.name for f in fields(Settings)}

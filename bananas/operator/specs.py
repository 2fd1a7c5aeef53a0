"""Typed views of the WorkerPool and CronSchedule specs.

The CRD's OpenAPI schema (``crds/*.yaml``) is the first line of defence: the
API server refuses bad values at ``kubectl apply`` and fills in the defaults.
These pydantic models are the second: they give the reconcile functions typed
fields, and they repeat the schema's defaults so that an object stored before a
field existed (an older CRD) still reads. A spec these models refuse is
reported as a condition and an Event by the handlers, never raised out of them.

Pod-spec fragments the operator only passes through (affinity, env, envFrom,
resources, tolerations) stay plain JSON: Kubernetes validates them when the
Deployment is written, and the operator has no business re-implementing that.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from bananas.config import env_var
from bananas.keys import DEFAULT_PREFIX, ROUTING_KEY_RULE, is_valid_routing_key
from bananas.models import ConcurrencyPolicy, Priority

__all__ = [
    "AutoscalingSpec",
    "CronScheduleSpec",
    "RedisRef",
    "SpecError",
    "WorkerPoolSpec",
    "parse_cronschedule",
    "parse_workerpool",
]

DEFAULT_REDIS_SECRET = "bananas-redis"
DEFAULT_REDIS_KEY = "url"
#: The pods' key-prefix variable: set from ``spec.redis.prefix``, refused in ``env``.
PREFIX_VAR = env_var("prefix")
#: What a key prefix may hold: no braces (they would make a Redis Cluster hash tag).
PREFIX_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"


def _routing_key(value: str) -> str:
    if not is_valid_routing_key(value):
        raise ValueError(f"invalid routing key {value!r}: a routing key is {ROUTING_KEY_RULE}")
    return value


RoutingKey = Annotated[str, AfterValidator(_routing_key)]


class SpecError(ValueError):
    """A spec the operator cannot act on; the message says which field and why."""


class _Spec(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )


class RedisRef(_Spec):
    """A Secret key holding the Redis URL, in the resource's own namespace."""

    secret_name: str = Field(DEFAULT_REDIS_SECRET, min_length=1)
    key: str = Field(DEFAULT_REDIS_KEY, min_length=1)
    #: Prefix of every Redis key (the pods' BANANAS_PREFIX), for Redis shared with others.
    prefix: str = Field(DEFAULT_PREFIX, pattern=PREFIX_PATTERN)


class Stabilization(_Spec):
    """One direction's stabilisation window (as in the HPA's ``behavior``)."""

    stabilization_window_seconds: int = Field(0, ge=0)


class FallbackSpec(_Spec):
    """The size a pool takes while Redis cannot be read (as KEDA's ``fallback``)."""

    failure_threshold: int = Field(3, ge=1)
    replicas: int = Field(ge=0)


class AutoscalingSpec(_Spec):
    """How the autoscaler sizes the pool; see :mod:`bananas.operator.autoscaler`."""

    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(10, ge=0)
    target_jobs_per_replica: int = Field(10, ge=1)
    activation_jobs: int = Field(1, ge=1)
    cooldown_seconds: int = Field(300, ge=0)
    poll_interval: int = Field(15, ge=1)
    scale_up: Stabilization = Field(
        default_factory=lambda: Stabilization.model_validate({"stabilizationWindowSeconds": 0})
    )
    scale_down: Stabilization = Field(
        default_factory=lambda: Stabilization.model_validate({"stabilizationWindowSeconds": 300})
    )
    #: None: the pool keeps its size while Redis is unreadable.
    fallback: FallbackSpec | None = None

    @model_validator(mode="after")
    def _bounds(self) -> AutoscalingSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError("minReplicas must not be greater than maxReplicas")
        return self


class WorkerPoolSpec(_Spec):
    """``WorkerPool.spec``: what the pool's pods run, and how many of them."""

    image: str = Field(min_length=1)
    app: str = Field(min_length=1)
    image_pull_policy: str | None = None
    image_pull_secrets: list[dict[str, Any]] = []
    routing_keys: list[RoutingKey] = Field(["default"], min_length=1)
    priorities: list[Priority] = [Priority.HIGH, Priority.NORMAL, Priority.LOW]
    concurrency: int = Field(10, ge=1)
    job_timeout: str = "5m"
    max_retries: int = Field(3, ge=0)
    gpus: int = Field(0, ge=0)
    log_level: str = "INFO"
    resources: dict[str, Any] = {}
    node_selector: dict[str, str] = {}
    tolerations: list[dict[str, Any]] = []
    affinity: dict[str, Any] | None = None
    priority_class_name: str | None = None
    service_account_name: str | None = None
    env: list[dict[str, Any]] = []
    env_from: list[dict[str, Any]] = []
    pod_annotations: dict[str, str] = {}
    #: Extra pod volumes and the worker container's mounts of them (model caches, ...).
    volumes: list[dict[str, Any]] = []
    volume_mounts: list[dict[str, Any]] = []
    #: Size of a memory-backed ``/dev/shm`` (a quantity such as ``1Gi``); None: the runtime's.
    shm_size: str | int | None = None
    runtime_class_name: str | None = None
    topology_spread_constraints: list[dict[str, Any]] = []
    redis: RedisRef = Field(default_factory=lambda: RedisRef.model_validate({}))
    #: None: ``jobTimeout`` plus a margin (see :func:`bananas.operator.workerpool.grace_period`).
    termination_grace_period_seconds: int | None = Field(None, ge=1)
    pod_disruption_budget: dict[str, Any] = {"maxUnavailable": 1}
    autoscaling: AutoscalingSpec = Field(default_factory=lambda: AutoscalingSpec.model_validate({}))

    @model_validator(mode="after")
    def _prefix_from_redis(self) -> WorkerPoolSpec:
        if any(item.get("name") == PREFIX_VAR for item in self.env):
            raise ValueError(
                f"env: {PREFIX_VAR} is set by the operator from spec.redis.prefix, which the"
                " operator reads the queues with too; set that instead"
            )
        return self


class CronScheduleSpec(_Spec):
    """``CronSchedule.spec``: when to fire which job (CronJob semantics)."""

    schedule: str = Field(min_length=1)
    job: str = Field(min_length=1)
    time_zone: str = "UTC"
    payload: Any = None
    priority: Priority = Priority.NORMAL
    routing_key: RoutingKey = "default"
    suspend: bool = False
    concurrency_policy: ConcurrencyPolicy = ConcurrencyPolicy.ALLOW
    starting_deadline_seconds: int | None = Field(None, ge=0)
    max_retries: int = Field(3, ge=0)
    description: str = ""
    redis: RedisRef = Field(default_factory=lambda: RedisRef.model_validate({}))


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "spec"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def parse_workerpool(spec: Any) -> WorkerPoolSpec:
    """Read a WorkerPool spec. Raises :class:`SpecError` naming the bad fields."""
    try:
        return WorkerPoolSpec.model_validate(spec or {})
    except ValidationError as exc:
        raise SpecError(_describe(exc)) from None


def parse_cronschedule(spec: Any) -> CronScheduleSpec:
    """Read a CronSchedule spec. Raises :class:`SpecError` naming the bad fields."""
    try:
        return CronScheduleSpec.model_validate(spec or {})
    except ValidationError as exc:
        raise SpecError(_describe(exc)) from None

"""Bananas: a Redis-backed distributed task queue.

The public surface only: ``from bananas import Client`` is all an application needs
to submit jobs; the worker runtime lives in ``bananas.worker_runtime`` and the
Kubernetes operator in ``bananas.operator``.
"""

from bananas.client import AsyncClient, Client, JobSpec
from bananas.errors import (
    BananasConnectionError,
    BananasError,
    ConfigError,
    EvictionPolicyError,
    HandlerNotFoundError,
    InvalidJobError,
    InvalidRoutingKeyError,
    JobNotFoundError,
    PayloadTooLargeError,
    PermanentError,
    RedisOutOfMemoryError,
    ResultNotReadyError,
    Retry,
    WaitTimeoutError,
)
from bananas.models import (
    ConcurrencyPolicy,
    Job,
    JobEvent,
    JobResult,
    JobStatus,
    Priority,
    QueueStats,
    Schedule,
    ScheduleStatus,
    WorkerInfo,
)
from bananas.validation import validate_routing_key

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "BananasConnectionError",
    "BananasError",
    "Client",
    "ConcurrencyPolicy",
    "ConfigError",
    "EvictionPolicyError",
    "HandlerNotFoundError",
    "InvalidJobError",
    "InvalidRoutingKeyError",
    "Job",
    "JobEvent",
    "JobNotFoundError",
    "JobResult",
    "JobSpec",
    "JobStatus",
    "PayloadTooLargeError",
    "PermanentError",
    "Priority",
    "QueueStats",
    "RedisOutOfMemoryError",
    "ResultNotReadyError",
    "Retry",
    "Schedule",
    "ScheduleStatus",
    "WaitTimeoutError",
    "WorkerInfo",
    "validate_routing_key",
]

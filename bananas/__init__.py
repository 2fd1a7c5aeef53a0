"""Bananas: a Redis-backed distributed task queue.

The public surface only: ``from bananas import Client`` is all an application needs
to submit jobs; the worker runtime lives in ``bananas.worker_runtime`` and the
Kubernetes operator in ``bananas.operator``.
"""

from bananas.client import AsyncClient, Client, JobSpec
from bananas.errors import (
    BananasAuthenticationError,
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
    NodeKind,
    NodeState,
    Priority,
    QueueStats,
    Schedule,
    ScheduleStatus,
    WorkerInfo,
    WorkflowInfo,
    WorkflowNode,
    WorkflowStatus,
)
from bananas.validation import validate_routing_key
from bananas.workflows import OnFailure, Signature, chain, chord, group, task

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "BananasAuthenticationError",
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
    "NodeKind",
    "NodeState",
    "OnFailure",
    "PayloadTooLargeError",
    "PermanentError",
    "Priority",
    "QueueStats",
    "RedisOutOfMemoryError",
    "ResultNotReadyError",
    "Retry",
    "Schedule",
    "ScheduleStatus",
    "Signature",
    "WaitTimeoutError",
    "WorkerInfo",
    "WorkflowInfo",
    "WorkflowNode",
    "WorkflowStatus",
    "chain",
    "chord",
    "group",
    "task",
    "validate_routing_key",
]

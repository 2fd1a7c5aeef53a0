"""One exception hierarchy for everything Bananas raises.

Errors from redis-py are translated at the boundary (``bananas.broker``) into
:class:`BananasConnectionError`, so callers never need to import redis-py to
handle a failure. Exceptions that carry a decision (:class:`PermanentError`,
:class:`Retry`) are raised by handlers and read by the worker runtime.
"""

from __future__ import annotations


class BananasError(Exception):
    """Root of every error Bananas raises."""


class InvalidJobError(BananasError, ValueError):
    """A job, payload or option was rejected before anything was written."""


class InvalidRoutingKeyError(InvalidJobError):
    """A routing key broke the rule (seed: ``ErrInvalidRoutingKey``)."""


class PayloadTooLargeError(InvalidJobError):
    """The encoded payload is above the client's ``max_payload_bytes``."""


class JobNotFoundError(BananasError, LookupError):
    """No job with that id exists (seed: ``ErrNotFound``)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id!r} not found")
        self.job_id = job_id


class ResultNotReadyError(BananasError):
    """The job has no result yet (seed: ``ErrNotReady``)."""


class WaitTimeoutError(BananasError, TimeoutError):
    """No result arrived within the wait timeout (seed: ``context.DeadlineExceeded``)."""

    def __init__(self, job_id: str, timeout: float, what: str = "job") -> None:
        super().__init__(f"no result for {what} {job_id!r} within {timeout:g}s")
        self.job_id = job_id
        self.timeout = timeout


class HandlerNotFoundError(BananasError, LookupError):
    """No handler is registered under that name (seed: ``ErrHandlerNotFound``)."""


class BananasConnectionError(BananasError, ConnectionError):
    """Redis could not be reached; the message names the URL with its password masked."""


class BananasAuthenticationError(BananasConnectionError):
    """Redis answered but refused the credentials (wrong or missing password or user)."""


class ConfigError(BananasError, ValueError):
    """A setting has a bad value; the message names the variable and the accepted forms."""


class PermanentError(BananasError):
    """Raised by a handler: do not retry, send the job to the dead-letter queue now."""


class Retry(BananasError):
    """Raised by a handler: retry after ``delay`` seconds instead of the computed backoff.

    The attempt still counts against ``max_retries``.
    """

    def __init__(self, message: str = "retry requested", *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class RedisOutOfMemoryError(BananasError):
    """Redis refused a write because it is at its ``maxmemory`` limit (``noeviction``).

    Nothing was written. ``maxmemory`` is the limit in bytes when it could be read
    (None when CONFIG GET is not allowed). Work that frees memory (acks, failures,
    releases) still runs, so retrying once workers have drained some jobs may succeed.
    """

    def __init__(self, message: str, *, maxmemory: int | None = None) -> None:
        super().__init__(message)
        self.maxmemory = maxmemory


class EvictionPolicyError(ConfigError):
    """Redis' ``maxmemory-policy`` can evict queue keys (``allkeys-*``); ``policy`` names it."""

    def __init__(self, message: str, *, policy: str) -> None:
        super().__init__(message)
        self.policy = policy

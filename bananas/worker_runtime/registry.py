"""The handler registry: job names to functions, plus schedules defined in code.

A handler takes the :class:`bananas.Job` and returns a JSON value (the result).
``async def`` handlers run on the worker's event loop; plain ``def`` handlers run in
its thread pool. Raising retries the job with backoff; raising
:class:`bananas.PermanentError` sends it to the dead-letter queue at once;
raising :class:`bananas.Retry` retries after the delay it names.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from bananas.models import DEFAULT_MAX_RETRIES, ConcurrencyPolicy, Job, Priority, Schedule
from bananas.validation import validate_job_name, validate_routing_key

Handler = Callable[[Job], Any] | Callable[[Job], Awaitable[Any]]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class HandlerEntry:
    """A registered handler and how it runs."""

    name: str
    fn: Handler
    is_async: bool
    #: Time limit of this handler's jobs that were submitted without ``timeout``.
    timeout: float | None = None
    #: Retry budget of this handler's jobs that were submitted without ``max_retries``.
    max_retries: int | None = None


class Registry:
    """Maps job names to handlers (seed: ``worker.NewRegistry``)."""

    def __init__(self) -> None:
        self._handlers: dict[str, HandlerEntry] = {}
        self._schedules: dict[str, Schedule] = {}

    def register(
        self,
        name: str,
        fn: Handler,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> None:
        """Register ``fn`` under ``name``; raises ValueError if the name is taken.

        ``timeout`` (seconds, more than 0) and ``max_retries`` are this handler's defaults
        for jobs submitted without their own; a job's own value always wins, and without
        either the worker's ``JOB_TIMEOUT`` and the client's budget apply.
        """
        validate_job_name(name)
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout of handler {name!r} must be more than 0, got {timeout!r}")
        if max_retries is not None and (not isinstance(max_retries, int) or max_retries < 0):
            raise ValueError(f"max_retries of handler {name!r} must be a whole number >= 0")
        if not callable(fn):
            raise TypeError(f"handler for {name!r} is not callable")
        if name in self._handlers and self._handlers[name].fn is not fn:
            raise ValueError(f"a handler is already registered for {name!r}")
        is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)  # noqa: B004 - async callable objects
        )
        self._handlers[name] = HandlerEntry(name, fn, is_async, timeout, max_retries)

    def handler(
        self,
        name: str | None = None,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> Callable[[F], F]:
        """Decorator form of :meth:`register`; the name defaults to the function's."""

        def decorate(fn: F) -> F:
            self.register(name or fn.__name__, fn, timeout=timeout, max_retries=max_retries)
            return fn

        return decorate

    def get(self, name: str) -> HandlerEntry | None:
        """The handler registered under ``name``, or None (seed: ``Get``)."""
        return self._handlers.get(name)

    def count(self) -> int:
        """How many handlers are registered (seed: ``Count``)."""
        return len(self._handlers)

    def names(self) -> list[str]:
        """Registered job names, sorted."""
        return sorted(self._handlers)

    def cron(
        self,
        cron: str,
        job: str,
        *,
        id: str | None = None,
        payload: Any = None,
        timezone: str = "UTC",
        priority: Priority | str = Priority.NORMAL,
        routing_key: str = "default",
        description: str = "",
        concurrency_policy: ConcurrencyPolicy | str = ConcurrencyPolicy.ALLOW,
        starting_deadline_seconds: float | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        enabled: bool = True,
    ) -> Schedule:
        """Define a cron schedule in code; the scheduler fires ``job`` at every match.

        The expression and time zone are checked now (raises ValueError).
        """
        from bananas.worker_runtime.cron import check_schedule

        schedule = Schedule(
            id=id or f"{job}:{cron}",
            cron=cron,
            job=validate_job_name(job),
            payload=payload,
            timezone=timezone,
            priority=Priority(priority),
            routing_key=validate_routing_key(routing_key),
            description=description,
            concurrency_policy=ConcurrencyPolicy(concurrency_policy),
            starting_deadline_seconds=starting_deadline_seconds,
            max_retries=max_retries,
            enabled=enabled,
        )
        check_schedule(schedule)
        self._schedules[schedule.id] = schedule
        return schedule

    @property
    def schedules(self) -> list[Schedule]:
        """Schedules defined in code with :meth:`cron`."""
        return list(self._schedules.values())

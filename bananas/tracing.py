"""OpenTelemetry tracing of a job, from ``submit`` to its handler (the ``otel`` extra).

A submit starts a PRODUCER span (``send <routing key>``) and writes its W3C trace
context (``traceparent``, ``tracestate``, ``baggage``: whatever the application's
propagator injects) into the job record's ``meta``; the worker extracts it and runs
the handler inside a CONSUMER span (``process <routing key>``) that is that span's
child, so one trace runs from the code that submitted to the code that ran. Both
carry the messaging semantic conventions (``messaging.system`` "bananas",
``messaging.destination.name`` the routing key, ``messaging.message.id`` the job id,
``messaging.operation`` / ``messaging.operation.type``); a failed attempt sets the
consumer span's status to ERROR with the error's message.

Workflows and cron fires extend the same trace:

- ``submit_workflow`` runs in an INTERNAL span (``workflow <name>``, attributes
  ``bananas.workflow.id``, ``.name``, ``.steps``) whose context is stored with every
  step's spec. A root step's producer span is its child; a step released later is the
  child of the consumer span of the step whose completion released it (the worker passes
  that context on with the step, :func:`current_context`), or of the workflow's span
  when none is known (the sweep starting a workflow its client left half-started).
  Every step's producer span carries ``bananas.workflow.id`` and ``.node``, so a trace
  reads workflow -> root send -> root process -> next send -> next process ...
- a cron fire runs in an INTERNAL span (``cron <schedule id>``, attributes
  ``bananas.schedule.id``, ``.slot`` (ISO 8601, UTC), ``.cron``, ``.timezone``,
  ``bananas.job.id`` and ``bananas.schedule.outcome``: fired, replaced or skipped),
  and the fire's submit, its producer span, is its child.

Zero cost when off. Tracing is on only when the ``opentelemetry`` API is importable
*and* the application has installed a real tracer provider
(``trace.set_tracer_provider``); otherwise :func:`tracer` returns None after one
global lookup and nothing else runs (no span objects, no ``meta`` in the record, so
records stay byte-identical to those of a build without the extra). Old records have
no ``meta``: their run gets a root span of its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

try:
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError:  # the otel extra is not installed
    trace = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

__all__ = [
    "SYSTEM",
    "consume",
    "current_context",
    "end_send",
    "fire",
    "forget",
    "start_send",
    "start_workflow",
    "tracer",
]

#: ``messaging.system`` of every span.
SYSTEM = "bananas"
#: The instrumentation scope's name.
SCOPE = "bananas"

#: How often :func:`tracer` looks at the global provider again (seconds). It is asked
#: once per job and per submit; ``trace.get_tracer_provider()`` reads ``os.environ``
#: each time (about a microsecond), so the answer is kept this long: a provider
#: installed after start-up is used from at most a second later.
RECHECK = 1.0

#: (monotonic time of the next look, the provider last seen, its tracer or None).
_cached: tuple[float, object, Tracer | None] = (0.0, None, None)


def tracer() -> Tracer | None:
    """The tracer to use, or None when tracing is off (see the module docstring)."""
    global _cached
    if trace is None:
        return None
    now = time.monotonic()
    cached = _cached
    if now < cached[0]:
        return cached[2]
    provider = trace.get_tracer_provider()
    if provider is cached[1]:
        found = cached[2]
    elif isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        found = None
    else:
        found = provider.get_tracer(SCOPE)
    _cached = (now + RECHECK, provider, found)
    return found


def forget() -> None:
    """Look at the global provider again on the next :func:`tracer` call (tests)."""
    global _cached
    _cached = (0.0, None, None)


def _attributes(routing_key: str, job_id: str, name: str, operation: str) -> dict[str, Any]:
    return {
        "messaging.system": SYSTEM,
        "messaging.destination.name": routing_key,
        "messaging.message.id": job_id,
        # The older convention's name and the current one's, for either kind of backend.
        "messaging.operation": "publish" if operation == "send" else operation,
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
        "bananas.job.name": name,
    }


def start_send(
    tracer: Tracer,
    routing_key: str,
    job_id: str,
    name: str,
    *,
    parent: Mapping[str, str] | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> tuple[Span, dict[str, str]]:
    """Start the PRODUCER span of one submit; returns it and the trace context to
    store with the job (the record's ``meta``). End it with :func:`end_send`.

    The span is the child of the current span, or of the span whose context ``parent``
    carries (a workflow's step); ``attributes`` are added to the messaging ones."""
    context = propagate.extract(parent) if parent else None
    span = tracer.start_span(
        f"send {routing_key}",
        context=context,
        kind=SpanKind.PRODUCER,
        attributes={**_attributes(routing_key, job_id, name, "send"), **(attributes or {})},
    )
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return span, carrier


def end_send(spans: list[Span], error: BaseException | None = None) -> None:
    """End the producer spans of a submit, marked failed when ``error`` is given."""
    for span in spans:
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        span.end()


@contextmanager
def consume(
    tracer: Tracer,
    meta: Mapping[str, Any],
    routing_key: str,
    job_id: str,
    name: str,
    attempt: int,
) -> Iterator[Span]:
    """The CONSUMER span of one attempt, current while the handler runs, the child of
    the producer span whose context ``meta`` carries (a root span without one)."""
    parent = propagate.extract(meta) if meta else None
    attributes = _attributes(routing_key, job_id, name, "process")
    attributes["bananas.job.attempt"] = attempt
    with tracer.start_as_current_span(
        f"process {routing_key}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


def failed(span: Span, status: str, error: str) -> None:
    """Mark a consumer span's attempt as failed (``status``: retried or dead)."""
    span.set_attribute("bananas.job.outcome", status)
    span.set_status(Status(StatusCode.ERROR, error))
    span.set_attribute("error.type", error.split(":", 1)[0][:100] or "error")


def current_context() -> dict[str, str]:
    """The current span's trace context as a carrier (``traceparent``...), to hand to
    work that a later, separate step does on its behalf; {} when tracing is off or no
    span is current."""
    if trace is None or not trace.get_current_span().get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def start_workflow(
    tracer: Tracer, workflow_id: str, name: str, steps: int
) -> tuple[Span, dict[str, str]]:
    """Start the span of one workflow submit (a child of the current span); returns it
    and its context, which every step's spec keeps. End it with :func:`end_send`."""
    span = tracer.start_span(
        f"workflow {name}" if name else "workflow",
        kind=SpanKind.INTERNAL,
        attributes={
            "messaging.system": SYSTEM,
            "bananas.workflow.id": workflow_id,
            "bananas.workflow.name": name,
            "bananas.workflow.steps": steps,
        },
    )
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return span, carrier


@contextmanager
def fire(
    tracer: Tracer | None,
    schedule_id: str,
    slot: str,
    cron: str,
    timezone: str,
    job_id: str,
) -> Iterator[Span | None]:
    """The span of one cron fire (``slot``: the slot's ISO 8601 time), current while
    the scheduler submits the fire's job, so its producer span is this span's child;
    nothing (None) when ``tracer`` is None. Set ``bananas.schedule.outcome`` on it."""
    if tracer is None:
        yield None
        return
    with tracer.start_as_current_span(
        f"cron {schedule_id}",
        kind=SpanKind.INTERNAL,
        attributes={
            "messaging.system": SYSTEM,
            "bananas.schedule.id": schedule_id,
            "bananas.schedule.slot": slot,
            "bananas.schedule.cron": cron,
            "bananas.schedule.timezone": timezone,
            "bananas.job.id": job_id,
        },
    ) as span:
        yield span

"""OpenTelemetry: one trace from ``submit`` to the handler, against a real Redis and a
worker embedded in the test's process, exported by the SDK's in-memory exporter.

The global tracer provider can be set once per process, so the test hands its own
provider to ``bananas.tracing.tracer`` (the one function both sides ask) instead; how
``tracer`` finds the global one is covered in tests/unit/sdk/test_tracing.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from bananas import AsyncClient, Job, JobStatus, PermanentError, tracing
from bananas.worker_runtime import Registry, Worker
from tests.support.servers import RedisServer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def exporter(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    provider = TracerProvider()
    spans = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    monkeypatch.setattr(tracing, "tracer", lambda: provider.get_tracer("bananas"))
    yield provider, spans
    provider.shutdown()


def one(spans: list[ReadableSpan], kind: SpanKind, job_id: str) -> ReadableSpan:
    found = [
        s
        for s in spans
        if s.kind is kind and (s.attributes or {}).get("messaging.message.id") == job_id
    ]
    assert len(found) == 1, f"{kind} spans of {job_id}: {found}"
    return found[0]


async def test_a_trace_runs_from_submit_to_the_handler(
    single_redis: RedisServer, prefix: str, exporter: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, spans = exporter
    registry = Registry()
    seen: dict[str, trace.SpanContext] = {}

    @registry.handler("traced")
    async def traced(job: Job) -> str:
        seen[job.id] = trace.get_current_span().get_span_context()
        return "ok"

    @registry.handler("traced_sync")
    def traced_sync(job: Job) -> str:  # runs in a thread: the span must follow it there
        seen[job.id] = trace.get_current_span().get_span_context()
        return "ok"

    @registry.handler("broken")
    async def broken(job: Job) -> None:
        raise PermanentError("the order does not exist")

    async with AsyncClient(single_redis.url, prefix=prefix) as client:
        worker = Worker(registry, client=client, metrics_port=0, routing_keys=("orders", "default"))
        await worker.start()
        try:
            with provider.get_tracer("app").start_as_current_span("request") as request:
                ok = await client.submit_and_wait(
                    "traced", {"n": 1}, routing_key="orders", timeout=10
                )
            ok_sync = await client.submit_and_wait("traced_sync", None, timeout=10)
            bad = await client.submit_and_wait("broken", None, timeout=10)
            job = await client.get_job(ok.job_id)
        finally:
            await worker.stop()
    assert ok.status is JobStatus.COMPLETED and bad.status is JobStatus.FAILED
    finished = list(spans.get_finished_spans())

    send = one(finished, SpanKind.PRODUCER, ok.job_id)
    run = one(finished, SpanKind.CONSUMER, ok.job_id)
    assert send.parent is not None and send.parent.span_id == request.get_span_context().span_id
    assert run.parent is not None and run.parent.span_id == send.context.span_id
    assert run.context.trace_id == send.context.trace_id == request.get_span_context().trace_id
    assert seen[ok.job_id] == run.context, "the handler runs inside the consumer span"
    assert (send.name, run.name) == ("send orders", "process orders")
    assert send.attributes is not None and run.attributes is not None
    for span, operation in ((send, "publish"), (run, "process")):
        attributes = span.attributes or {}
        assert attributes["messaging.system"] == "bananas"
        assert attributes["messaging.destination.name"] == "orders"
        assert attributes["messaging.operation"] == operation
    assert run.status.status_code is StatusCode.UNSET
    assert job is not None and job.meta["traceparent"].startswith(
        f"00-{send.context.trace_id:032x}-{send.context.span_id:016x}-"
    )

    sync_run = one(finished, SpanKind.CONSUMER, ok_sync.job_id)
    assert seen[ok_sync.job_id] == sync_run.context, "a def handler's thread has the span too"
    assert sync_run.parent is not None
    assert (
        sync_run.parent.span_id == one(finished, SpanKind.PRODUCER, ok_sync.job_id).context.span_id
    )

    failed = one(finished, SpanKind.CONSUMER, bad.job_id)
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description == "PermanentError: the order does not exist"
    assert (failed.attributes or {})["bananas.job.outcome"] == "dead"


async def test_without_a_tracer_records_carry_no_trace_context(
    single_redis: RedisServer, prefix: str
) -> None:
    assert tracing.tracer() is None, "no provider was installed in this process"
    async with AsyncClient(single_redis.url, prefix=prefix) as client:
        job_id = await client.submit("untraced", None)
        job = await client.get_job(job_id)
    assert job is not None and job.meta == {}

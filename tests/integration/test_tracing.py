"""OpenTelemetry: one trace from ``submit`` to the handler, against a real Redis and a
worker embedded in the test's process, exported by the SDK's in-memory exporter.

The global tracer provider can be set once per process, so the test hands its own
provider to ``bananas.tracing.tracer`` (the one function both sides ask) instead; how
``tracer`` finds the global one is covered in tests/unit/sdk/test_tracing.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from bananas import (
    AsyncClient,
    Job,
    JobStatus,
    PermanentError,
    Schedule,
    WorkflowStatus,
    chain,
    group,
    task,
    tracing,
)
from bananas.worker_runtime import CronScheduler, Registry, Worker
from bananas.worker_runtime.cron import fire_id
from tests.support.clock import FakeClock
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


def by_id(spans: list[ReadableSpan]) -> dict[int, ReadableSpan]:
    return {s.context.span_id: s for s in spans}


def parent_of(span: ReadableSpan, spans: list[ReadableSpan]) -> ReadableSpan:
    assert span.parent is not None, f"{span.name} is a root span"
    return by_id(spans)[span.parent.span_id]


async def test_a_workflow_is_one_trace_each_step_the_child_of_the_step_that_released_it(
    single_redis: RedisServer, prefix: str, exporter: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, spans = exporter
    registry = Registry()

    @registry.handler("add")
    async def add(job: Job) -> int:
        return int(job.payload) + sum(r or 0 for r in job.parent_results)

    flow = chain(task("add", 1), group(task("add", 10), task("add", 100, routing_key="gpu")))
    flow = chain(flow, task("add", 1000))
    async with AsyncClient(single_redis.url, prefix=prefix) as client:
        worker = Worker(registry, client=client, metrics_port=0, routing_keys=("default", "gpu"))
        await worker.start()
        try:
            with provider.get_tracer("app").start_as_current_span("request") as request:
                info = await client.submit_workflow_and_wait(flow, timeout=20, name="etl")
        finally:
            await worker.stop()
    assert info.status is WorkflowStatus.COMPLETED
    finished = list(spans.get_finished_spans())
    workflow = next(s for s in finished if s.name == "workflow etl")
    assert workflow.kind is SpanKind.INTERNAL
    assert workflow.parent is not None
    assert workflow.parent.span_id == request.get_span_context().span_id
    assert dict(workflow.attributes or {}) == {
        "messaging.system": "bananas",
        "bananas.workflow.id": info.id,
        "bananas.workflow.name": "etl",
        "bananas.workflow.steps": 4,
    }
    nodes = {n.job_id: n.index for n in info.nodes if n.job_id}
    steps = list(nodes)
    assert len(steps) == 4
    sends = {job_id: one(finished, SpanKind.PRODUCER, job_id) for job_id in steps}
    runs = {job_id: one(finished, SpanKind.CONSUMER, job_id) for job_id in steps}
    for node, job_id in enumerate(steps):
        attributes = sends[job_id].attributes or {}
        assert attributes["bananas.workflow.id"] == info.id
        assert attributes["bananas.workflow.node"] == nodes[job_id]
        assert parent_of(runs[job_id], finished) is sends[job_id], f"step {node}: run <- send"
        assert runs[job_id].context.trace_id == workflow.context.trace_id, "one trace"
    first, middle, last = steps[0], steps[1:3], steps[3]
    assert parent_of(sends[first], finished) is workflow, "a root: the workflow's child"
    for job_id in middle:
        assert parent_of(sends[job_id], finished) is runs[first], "released by the first step"
    releaser = parent_of(sends[last], finished)
    assert releaser in [runs[j] for j in middle], "released by the last of the group to finish"


async def test_a_cron_fire_is_a_span_whose_child_is_the_job_s_producer_span(
    single_redis: RedisServer, prefix: str, exporter: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    _, spans = exporter
    clock = FakeClock()
    clock.offset = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC).timestamp() - time.time()
    schedule = Schedule(id="nightly", cron="* * * * *", job="tick", concurrency_policy="Forbid")
    registry = Registry()
    registry.register("tick", lambda job: "tock")
    async with AsyncClient(single_redis.url, prefix=prefix, clock=clock) as client:
        cron = CronScheduler(client, _Leader(), schedules=[schedule], clock=clock)
        await cron.step()  # first sight: nothing owed
        clock.advance(60)
        await cron.step()  # fires 12:01
        clock.advance(60)
        await cron.step()  # 12:02 skipped: the 12:01 job has not run (Forbid)
        job_id = fire_id("nightly", datetime(2026, 6, 1, 12, 1, tzinfo=UTC))
        worker = Worker(registry, client=client, metrics_port=0)
        await worker.start()
        try:
            await client.wait_for_result(job_id, timeout=10)
        finally:
            await worker.stop()
    finished = list(spans.get_finished_spans())
    fires = [s for s in finished if s.name == "cron nightly"]
    assert len(fires) == 2, [s.name for s in finished]
    fired, skipped = fires
    assert fired.kind is SpanKind.INTERNAL and fired.parent is None, "each fire: its own trace"
    assert dict(fired.attributes or {}) == {
        "messaging.system": "bananas",
        "bananas.schedule.id": "nightly",
        "bananas.schedule.slot": "2026-06-01T12:01:00+00:00",
        "bananas.schedule.cron": "* * * * *",
        "bananas.schedule.timezone": "UTC",
        "bananas.job.id": job_id,
        "bananas.schedule.outcome": "fired",
    }
    send = one(finished, SpanKind.PRODUCER, job_id)
    run = one(finished, SpanKind.CONSUMER, job_id)
    assert parent_of(send, finished) is fired
    assert parent_of(run, finished) is send
    assert (skipped.attributes or {})["bananas.schedule.outcome"] == "skipped"
    assert (skipped.attributes or {})["bananas.schedule.slot"] == "2026-06-01T12:02:00+00:00"
    assert not [s for s in finished if s.parent and s.parent.span_id == skipped.context.span_id]


class _Leader:
    """An elector that always leads (the election is not what these tests look at)."""

    identity = "tracing-test"
    lease_duration = 10.0

    async def acquire_or_renew(self) -> int | None:
        return 1

    async def release(self) -> None:
        return None

    async def close(self) -> None:
        return None

"""How ``bananas.tracing`` decides tracing is on: a real tracer provider installed."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from bananas import tracing
from bananas.models import Priority
from bananas.records import job_record


def test_off_until_an_sdk_provider_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    tracing.forget()
    assert tracing.tracer() is None, "the API's default (proxy) provider means off"
    tracing.forget()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: trace.NoOpTracerProvider())
    assert tracing.tracer() is None
    provider = TracerProvider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    assert tracing.tracer() is None, "the answer is kept for RECHECK seconds"
    tracing.forget()  # as after RECHECK seconds
    found = tracing.tracer()
    assert found is not None and tracing.tracer() is found, "one tracer per provider, cached"
    provider.shutdown()
    tracing.forget()


def test_off_without_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracing, "trace", None)
    assert tracing.tracer() is None


def test_a_record_without_trace_context_is_what_it_was() -> None:
    fields = dict(
        job_id="j",
        name="n",
        description="",
        payload="null",
        priority=Priority.NORMAL,
        routing_key="default",
        created=0.0,
        due=None,
        max_retries=3,
        timeout=None,
        success_ttl=1.0,
        failure_ttl=1.0,
    )
    assert '"meta"' not in job_record(**fields, meta={})  # type: ignore[arg-type]
    assert '"meta":{"traceparent":"x"}' in job_record(**fields, meta={"traceparent": "x"})  # type: ignore[arg-type]

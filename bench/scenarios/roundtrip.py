"""Scenario 4, round trip: submit a job and wait for its result.

One worker process with results enabled and the no-op handler (so the round
trip is all overhead: handler time is about zero); one client process makes
``roundtrip_n`` submit-and-wait calls one after the other, after 3 untimed
warm-up calls, each timed with ``perf_counter``. Each system waits the way
its documentation shows, with its defaults: pub/sub (Celery, SAQ), a blocking
read (RQ's result stream, Dramatiq's BLPOP), or polling (arq every 0.5 s,
taskiq every 0.2 s, Huey with back-off). asynq has no way to wait for a
result and is skipped.
"""

from __future__ import annotations

from bench.config import Sizes
from bench.scenarios.base import Context, Result, Scenario
from bench.systems import System

WARMUP = 3
CALL_TIMEOUT_S = 10.0


def skip_reason(system: System, sizes: Sizes) -> str | None:
    return None if system.results else "no API to wait for a job's result"


def run(ctx: Context, system: System) -> Result:
    n = ctx.sizes.roundtrip_n
    ctx.redis.flush()
    worker = ctx.start_worker(system, ctx.worker_spec(system, results=True))
    try:
        ctx.settle()
        spec = ctx.client_spec(
            "roundtrip", n, warmup=WARMUP, timeout_s=CALL_TIMEOUT_S, results=True
        )
        result = ctx.run_client(system, spec, timeout=60 + (n + WARMUP) * CALL_TIMEOUT_S)
    finally:
        worker.stop()
    ctx.redis.flush()
    rtt = result["rtt"]
    return {"n": n, "p50": rtt["p50"], "p99": rtt["p99"], "max": rtt["max"]}


def headline(result: Result) -> str:
    return f"round trip p50 {result['p50']:.2f} ms, p99 {result['p99']:.2f} ms"


SCENARIO = Scenario(
    name="roundtrip",
    title="submit-and-wait round trip (no-op handler)",
    describe=lambda s: f"N={s.roundtrip_n} sequential calls, one worker process, results on",
    skip_reason=skip_reason,
    run=run,
    headline=headline,
)

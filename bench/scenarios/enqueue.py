"""Scenario 1, enqueue: submission speed with no worker running.

One client process submits ``enqueue_n`` jobs one after the other, each call
timed with ``perf_counter`` (jobs/s over the loop, p50/p99 per call), after
20 untimed warm-up calls that open connections. Then, for systems with a bulk
API, the same number of jobs in batches of ``bulk_batch`` (jobs/s). Redis is
flushed before each part; the jobs are never run.
"""

from __future__ import annotations

from bench.scenarios.base import Context, Result, Scenario, always
from bench.systems import System

WARMUP = 20


def run(ctx: Context, system: System) -> Result:
    n = ctx.sizes.enqueue_n
    ctx.redis.flush()
    one = ctx.run_client(system, ctx.client_spec("sequential", n, warmup=WARMUP), 60 + n / 100)
    ctx.enqueue_rates[system.name] = one["rate"]
    result: Result = {
        "n": n,
        "one_by_one": {
            "rate": one["rate"],
            "p50_ms": one["call"]["p50"],
            "p99_ms": one["call"]["p99"],
        },
    }
    if system.bulk:
        ctx.redis.flush()
        spec = ctx.client_spec("bulk", n, batch=ctx.sizes.bulk_batch)
        bulk = ctx.run_client(system, spec, 60 + n / 100)
        result["bulk"] = {"rate": bulk["rate"], "batch": bulk["batch"]}
    ctx.redis.flush()
    return result


def headline(result: Result) -> str:
    one = result["one_by_one"]
    text = (
        f"{one['rate']:,.0f} jobs/s one by one "
        f"(p50 {one['p50_ms']:.3f} ms, p99 {one['p99_ms']:.3f} ms)"
    )
    if "bulk" in result:
        text += f"; bulk {result['bulk']['rate']:,.0f} jobs/s"
    return text


SCENARIO = Scenario(
    name="enqueue",
    title="enqueue one by one and in bulk",
    describe=lambda s: f"N={s.enqueue_n}, bulk batch {s.bulk_batch}, one client process, no worker",
    skip_reason=always,
    run=run,
    headline=headline,
)

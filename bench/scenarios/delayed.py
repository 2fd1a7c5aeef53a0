"""Scenario 5, delayed jobs: handler start minus due time.

One worker process runs (with the system's scheduler where that is a
separate component: RQ's ``with_scheduler``, taskiq's scheduler task). One
client submits ``delayed_n`` jobs at once, job k due at
start + ``delayed_lead_s`` + k * ``delayed_spacing_s``, so the due times fall
at every phase of any polling period. Each payload carries its due time; the
handler keeps start minus due. Negative values mean the job ran early (RQ
stores due times in whole seconds, rounded down). Systems whose scheduler may
be later than ``delayed_max_slack_s`` by design are skipped in that run.
"""

from __future__ import annotations

from bench.config import Sizes
from bench.scenarios.base import Context, Result, Scenario
from bench.stats import summarize_ms
from bench.systems import System


def skip_reason(system: System, sizes: Sizes) -> str | None:
    if not system.delayed:
        return "no delayed jobs"
    if system.delayed_slack_s > sizes.delayed_max_slack_s:
        return (
            f"its scheduler may be up to {system.delayed_slack_s:.0f} s late by design; "
            "runs only in the full benchmark"
        )
    return None


def run(ctx: Context, system: System) -> Result:
    sizes = ctx.sizes
    n = sizes.delayed_n
    ctx.redis.flush()
    spec = ctx.worker_spec(system, report="latency", expect=n, scheduler=True)
    worker = ctx.start_worker(system, spec)
    try:
        ctx.settle()
        client = ctx.client_spec(
            "delayed", n, lead_s=sizes.delayed_lead_s, spacing_s=sizes.delayed_spacing_s
        )
        sent = ctx.run_client(system, client, timeout=60 + n / 50)
        span = sizes.delayed_lead_s + n * sizes.delayed_spacing_s
        done = worker.wait_for(["done"], timeout=span + system.delayed_slack_s + 30)
    finally:
        worker.stop()
    ctx.redis.flush()
    summary = summarize_ms(done["latencies"])
    return {
        "n": n,
        "submit_seconds": sent["submit_seconds"],
        **{k: summary[k] for k in ("min", "p50", "p95", "p99", "max")},
    }


def headline(result: Result) -> str:
    return (
        f"lateness p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms "
        f"(min {result['min']:.1f}, max {result['max']:.1f})"
    )


SCENARIO = Scenario(
    name="delayed",
    title="delayed-job lateness (handler start minus due time)",
    describe=lambda s: (
        f"N={s.delayed_n}, first due {s.delayed_lead_s:.1f} s after submission, "
        f"then one every {s.delayed_spacing_s * 1e3:.0f} ms; one worker process"
    ),
    skip_reason=skip_reason,
    run=run,
    headline=headline,
)

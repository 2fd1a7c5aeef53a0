"""Scenario 3, latency: submit to handler start, at idle and under load.

One worker process runs; after it reports ready and settles, one client
process submits jobs on a fixed schedule (open loop: job k is due at
start + k / rate, and a late client submits at once rather than skipping).
Each payload carries ``time.time()`` read just before the submit call; the
handler's first statement reads the clock again and keeps the difference.
All processes share one host clock.

* idle: ``idle_n`` jobs, one every ``idle_interval_s`` (10 ms);
* loaded: for ``loaded_seconds`` at ``loaded_fraction`` (80 %) of the
  system's own no-op drain rate from the drain scenario (measured here if it
  did not run). The client's achieved rate is reported next to the offered
  one: a single client process may not keep up with the fastest systems.
"""

from __future__ import annotations

from bench.scenarios.base import Context, Result, Scenario, always
from bench.stats import summarize_ms
from bench.systems import System


def measure(ctx: Context, system: System, n: int, rate: float) -> Result:
    """Submit ``n`` jobs at ``rate`` per second; return latency percentiles."""
    ctx.redis.flush()
    worker = ctx.start_worker(system, ctx.worker_spec(system, report="latency", expect=n))
    try:
        ctx.settle()
        spec = ctx.client_spec("paced", n, rate=rate)
        sent = ctx.run_client(system, spec, timeout=60 + n / rate * 2)
        done = worker.wait_for(["done"], timeout=60 + n / rate)
    finally:
        worker.stop()
    ctx.redis.flush()
    summary = summarize_ms(done["latencies"])
    return {
        "n": n,
        "rate": rate,
        "achieved": sent["achieved"],
        **{k: summary[k] for k in ("p50", "p95", "p99", "max")},
    }


def run(ctx: Context, system: System) -> Result:
    sizes = ctx.sizes
    idle = measure(ctx, system, sizes.idle_n, 1.0 / sizes.idle_interval_s)
    rate = sizes.loaded_fraction * ctx.drain_rate(system)
    n = max(50, round(rate * sizes.loaded_seconds))
    loaded = measure(ctx, system, n, rate)
    return {"idle": idle, "loaded": loaded}


def headline(result: Result) -> str:
    idle, loaded = result["idle"], result["loaded"]
    return (
        f"idle p50/p95/p99 {idle['p50']:.2f}/{idle['p95']:.2f}/{idle['p99']:.2f} ms; "
        f"at {loaded['rate']:,.0f}/s (achieved {loaded['achieved']:,.0f}/s) "
        f"{loaded['p50']:.2f}/{loaded['p95']:.2f}/{loaded['p99']:.2f} ms"
    )


SCENARIO = Scenario(
    name="latency",
    title="submit-to-start latency, idle and at 80% of the drain rate",
    describe=lambda s: (
        f"idle: N={s.idle_n}, one job every {s.idle_interval_s * 1e3:.0f} ms; "
        f"loaded: {s.loaded_fraction:.0%} of the no-op drain rate for {s.loaded_seconds:.0f} s; "
        "one worker process, one client process"
    ),
    skip_reason=always,
    run=run,
    headline=headline,
)

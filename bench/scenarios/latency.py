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
  did not run). When one client process cannot submit that fast (its
  one-by-one rate from the enqueue scenario, with 30 % headroom), the load is
  split over several client processes, each with its share of the rate, but
  never more than half the CPUs: extra clients on a small machine starve the
  worker and Redis, and the latency then measures the clients. On 2 cores
  that is one client, so the achieved rate (reported next to the offered
  one) may fall short of 80 % for systems that drain faster than one
  client submits. The worker also shares the CPUs with the client here,
  which it did not in the drain scenario, so 80 % of the drain rate can be
  close to saturation on a small machine.
"""

from __future__ import annotations

import math
import os

from bench.scenarios.base import Context, Result, Scenario, always
from bench.scenarios.drain import drain_rate
from bench.stats import summarize_ms
from bench.systems import System

MAX_CLIENTS = max(1, min(4, (os.cpu_count() or 2) // 2))
"""Client processes under load: at most half the CPUs, at most four."""
CLIENT_HEADROOM = 0.7
"""Plan on a client process sustaining this fraction of its measured rate."""


def clients_needed(ctx: Context, system: System, rate: float) -> int:
    """How many client processes it takes to submit ``rate`` jobs/s."""
    capacity = ctx.enqueue_rates.get(system.name)
    if not capacity:
        return 1
    return max(1, min(MAX_CLIENTS, math.ceil(rate / (capacity * CLIENT_HEADROOM))))


def measure(ctx: Context, system: System, n: int, rate: float, clients: int = 1) -> Result:
    """Submit ``n`` jobs at ``rate`` per second in total from ``clients`` processes;
    return latency percentiles."""
    ctx.redis.flush()
    worker = ctx.start_worker(system, ctx.worker_spec(system, report="latency", expect=n))
    try:
        ctx.settle()
        shares = [n // clients + (1 if k < n % clients else 0) for k in range(clients)]
        specs = [ctx.client_spec("paced", share, rate=rate / clients) for share in shares]
        sent = ctx.run_clients(system, specs, timeout=60 + n / rate * 2)
        done = worker.wait_for(["done"], timeout=60 + n / rate)
    finally:
        worker.stop()
    ctx.redis.flush()
    summary = summarize_ms(done["latencies"])
    return {
        "n": n,
        "rate": rate,
        "clients": clients,
        "achieved": sum(s["achieved"] for s in sent),
        **{k: summary[k] for k in ("p50", "p95", "p99", "max")},
    }


def run(ctx: Context, system: System) -> Result:
    sizes = ctx.sizes
    idle = measure(ctx, system, sizes.idle_n, 1.0 / sizes.idle_interval_s)
    rate = sizes.loaded_fraction * drain_rate(ctx, system)
    n = max(50, round(rate * sizes.loaded_seconds))
    loaded = measure(ctx, system, n, rate, clients_needed(ctx, system, rate))
    return {"idle": idle, "loaded": loaded}


def headline(result: Result) -> str:
    idle, loaded = result["idle"], result["loaded"]
    return (
        f"idle p50/p95/p99 {idle['p50']:.2f}/{idle['p95']:.2f}/{idle['p99']:.2f} ms; "
        f"at {loaded['rate']:,.0f}/s (achieved {loaded['achieved']:,.0f}/s, "
        f"{loaded['clients']} client{'s' if loaded['clients'] > 1 else ''}) "
        f"{loaded['p50']:.2f}/{loaded['p95']:.2f}/{loaded['p99']:.2f} ms"
    )


SCENARIO = Scenario(
    name="latency",
    title="submit-to-start latency, idle and at 80% of the drain rate",
    describe=lambda s: (
        f"idle: N={s.idle_n}, one job every {s.idle_interval_s * 1e3:.0f} ms; "
        f"loaded: {s.loaded_fraction:.0%} of the no-op drain rate for {s.loaded_seconds:.0f} s; "
        "one worker process, one client process (more under load on machines with "
        "more than 3 CPUs)"
    ),
    skip_reason=always,
    run=run,
    headline=headline,
)

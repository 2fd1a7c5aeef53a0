"""Scenarios 2 and 8, drain: how fast one worker process empties a backlog,
and how many Redis commands it spends per job.

``drain_n`` jobs are prefilled with no worker running (bulk API if any),
``INFO commandstats`` is zeroed (CONFIG RESETSTAT), then one worker process
starts with the system's concurrency. The probe in the handler records the
wall time of the first and of the last completion; the rate is
``(N - 1) / (last - first)``, so worker start-up is not counted. Completion is
detected in the worker process itself (a counter under a lock; the ``done``
event comes over the adapter's pipe, not through Redis), so the measurement
adds no Redis traffic. Two handlers: ``noop`` and ``incr`` (one INCR on a
counter key, through the probe's own client).

Commands per job (scenario 8) are the ``INFO commandstats`` calls after the
no-op drain divided by N, the driver's own INFO/CONFIG left out. They include
the worker's start-up and its idle polling between the last job and the read,
which is small next to N jobs but not zero at ``--quick`` sizes. Redis counts
the commands a Lua script runs as well as the EVALSHA itself, so this is work
done by Redis per job, not round trips per job.
"""

from __future__ import annotations

from bench.scenarios.base import Context, Result, Scenario, always
from bench.systems import System

TOP_COMMANDS = 8


def drain_once(ctx: Context, system: System, work: str) -> Result:
    """Prefill, drain with handler ``work`` and return rate and command counts."""
    n = ctx.sizes.drain_n
    ctx.redis.flush()
    ctx.prefill(system, n)
    ctx.redis.reset_stats()
    worker = ctx.start_worker(system, ctx.worker_spec(system, work=work, expect=n))
    try:
        done = worker.wait_for(["done"], timeout=60 + n / 50)
        calls = ctx.redis.command_calls()
    finally:
        worker.stop()
    ctx.redis.flush()
    seconds = done["last"] - done["first"]
    total = sum(calls.values())
    top = sorted(calls.items(), key=lambda item: -item[1])[:TOP_COMMANDS]
    return {
        "n": n,
        "seconds": seconds,
        "rate": (n - 1) / seconds if seconds > 0 else float("inf"),
        "commands_per_job": total / n,
        "top_commands": {name: round(count / n, 3) for name, count in top},
    }


def drain_rate(ctx: Context, system: System) -> float:
    """The no-op drain rate, measured now if the drain scenario did not run."""
    if system.name not in ctx.drain_rates:
        ctx.drain_rates[system.name] = drain_once(ctx, system, "noop")["rate"]
    return ctx.drain_rates[system.name]


def run(ctx: Context, system: System) -> Result:
    noop = drain_once(ctx, system, "noop")
    ctx.drain_rates[system.name] = noop["rate"]
    incr = drain_once(ctx, system, "incr")
    return {"n": noop["n"], "concurrency": system.concurrency, "noop": noop, "incr": incr}


def headline(result: Result) -> str:
    noop, incr = result["noop"], result["incr"]
    return (
        f"no-op {noop['rate']:,.0f} jobs/s, incr {incr['rate']:,.0f} jobs/s, "
        f"{noop['commands_per_job']:.1f} Redis commands/job"
    )


SCENARIO = Scenario(
    name="drain",
    title="drain a prefilled backlog (and Redis commands per job)",
    describe=lambda s: f"N={s.drain_n} prefilled, one worker process, concurrency per system",
    skip_reason=always,
    run=run,
    headline=headline,
)

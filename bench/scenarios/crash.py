"""Scenario 6, crash recovery: SIGKILL a worker holding jobs.

1. Worker A starts with a handler that sleeps far longer than the scenario
   (``hold``) and reports each start; as many jobs as A's concurrency are
   submitted, and the driver waits until A has started all of them.
2. Worker B starts (normal no-op handler, reporting each completion) and
   settles, so its start-up is not counted.
3. A's process group gets SIGKILL; the clock starts.
4. The driver collects B's completions of the jobs A held, until all of them
   ran or ``crash_timeout_s`` passed.

Reported: held, recovered, and the time from the kill to each recovered
job's completion (p50, max); "not recovered within X s" when none came back.
Systems whose recovery is slower than X by design (visibility timeouts of an
hour, job timeouts of minutes, heartbeats of a minute in ``--quick``) report
that too: it is what their users get with those settings.
"""

from __future__ import annotations

import time

from bench.procs import Child
from bench.scenarios.base import Context, Result, Scenario, always
from bench.stats import percentile
from bench.systems import System

START_TIMEOUT_S = 30.0
HOLD_MARGIN_S = 120.0


def _held_jobs(ctx: Context, system: System) -> tuple[Child, set[int]]:
    victim = ctx.start_worker(
        system,
        ctx.worker_spec(
            system, work="hold", hold_s=ctx.sizes.crash_timeout_s + HOLD_MARGIN_S, report="each"
        ),
    )
    k = system.concurrency
    ctx.run_client(system, ctx.client_spec("sequential", k), timeout=60)
    started: set[int] = set()
    deadline = time.monotonic() + START_TIMEOUT_S
    while len(started) < k:
        event = victim.next_event(deadline)
        if event is None:
            break
        if event.get("event") == "started":
            started.add(int(event["i"]))
    return victim, started


def run(ctx: Context, system: System) -> Result:
    timeout = ctx.sizes.crash_timeout_s
    ctx.redis.flush()
    victim, held = _held_jobs(ctx, system)
    rescuer = None
    try:
        if not held:
            return {
                "held": 0,
                "recovered": 0,
                "timeout_s": timeout,
                "note": "victim started no job",
            }
        rescuer = ctx.start_worker(system, ctx.worker_spec(system, report="each"))
        ctx.settle()
        killed_at = time.time()
        victim.kill()
        times: list[float] = []
        pending = set(held)
        deadline = time.monotonic() + timeout
        while pending:
            event = rescuer.next_event(deadline)
            if event is None:
                break
            if event.get("event") == "completed" and int(event["i"]) in pending:
                pending.discard(int(event["i"]))
                times.append(float(event["t"]) - killed_at)
    finally:
        victim.stop()
        if rescuer is not None:
            rescuer.stop()
        ctx.redis.flush()
    result: Result = {"held": len(held), "recovered": len(times), "timeout_s": timeout}
    if times:
        result["p50_s"] = percentile(times, 50)
        result["max_s"] = max(times)
    return result


def headline(result: Result) -> str:
    if not result["recovered"]:
        return f"{result['held']} held, not recovered within {result['timeout_s']:.0f} s"
    text = (
        f"{result['recovered']}/{result['held']} recovered, "
        f"p50 {result['p50_s']:.1f} s, max {result['max_s']:.1f} s after the kill"
    )
    if result["recovered"] < result["held"]:
        text += f" (the rest not within {result['timeout_s']:.0f} s)"
    return text


SCENARIO = Scenario(
    name="crash",
    title="crash recovery after SIGKILL of a worker holding jobs",
    describe=lambda s: (
        f"jobs held = the worker's concurrency; wait up to {s.crash_timeout_s:.0f} s "
        "on a second worker"
    ),
    skip_reason=always,
    run=run,
    headline=headline,
)

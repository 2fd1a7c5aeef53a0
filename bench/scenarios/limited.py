"""Issue 16's limited drain (``limited``): a global rate limit's accuracy and its CPU.

Two drains of ``limited_n`` prefilled no-op jobs by one worker process, in
the same run: first with no limit, then with a rate limit of
``limited_rate`` jobs/s stored on the job's name (Bananas:
``set_limit("name:bench_job", rate="500/s")``; the jobs carry no group). Each
drain reports its rate, ``(N - 1) / (last - first completion)``, and the
worker process's CPU per job (``time.process_time()`` at the first and last
completion, as in ``cpu_per_job``).

- **achieved / configured**: the limited drain's rate over the limit, and
  **off by %**, its distance from 1 either way (a limit that lets too many
  through is as wrong as one that starves). Bananas' limit is a token bucket
  (GCRA) with a small burst (2 by default), so only the first jobs may start
  back to back. Huey's is a fixed one-second window: with ``--quick`` sizes
  (N = 1,000 at 500/s, two windows) the jobs of two adjacent windows can run
  back to back across the boundary, which shows as up to twice the limit;
  over the full run's 20 windows that error is about a twentieth.
- **limit CPU µs/job**: the limited drain's CPU per job minus the unlimited
  one's. It is the whole cost of running under a limit in the worker: the
  limit check in the fetch script is Redis' CPU, not the worker's, so what
  the worker pays is the fetches that come back short and the waits for the
  next token (more, smaller fetches). Redis' own share is not in it.

Bananas enforces its limit at fetch time: a job over it stays queued. Huey's
``rate_limit`` (a fixed one-second window counted in Redis) is checked inside
the task: a call over the limit raises, and Huey schedules the job again for
the next window, so the rejected attempts are part of the CPU it pays. Systems
with no global rate limit print "n/a" with the reason (:data:`NOT_AVAILABLE`).
"""

from __future__ import annotations

from bench.config import Sizes
from bench.scenarios.base import Context, Result, Scenario
from bench.systems import System

LIMIT_KEY = "name:bench_job"
"""The limited key: every job of the bench's one job name."""

STORED = frozenset({"bananas"})
"""Systems whose limit is stored in Redis by the prefill client (``set_limit``)."""
DECLARED = frozenset({"huey"})
"""Systems whose limit is declared on the handler (``WorkerSpec.limit_rate``)."""

NOT_AVAILABLE = {
    "rq": "n/a: RQ's RateLimit caps concurrency (jobs queued or running at once), not a rate",
    "dramatiq": "n/a: not wired: Dramatiq's rate limiters raise inside the actor, and the"
    " message is retried after an exponential backoff (15 s at least by default), so a drain"
    " under them would time the backoff",
    "celery": "n/a: Celery's rate_limit is per worker, not global",
    "arq": "n/a: arq has no rate limit",
    "saq": "n/a: SAQ has no rate limit",
    "taskiq": "n/a: Taskiq has no rate limit",
    "asynq": "n/a: asynq has no rate limit of its own (its docs show a handler-side limiter)",
}


def _drain(ctx: Context, system: System, rate: int | None) -> Result:
    n = ctx.sizes.limited_n
    ctx.redis.flush()
    stored = rate is not None and system.name in STORED
    ctx.prefill(system, n, limit_key=LIMIT_KEY if stored else "", limit_rate=f"{rate}/s")
    declared = rate if rate is not None and system.name in DECLARED else 0
    spec = ctx.worker_spec(system, work="noop", expect=n, limit_rate=declared)
    worker = ctx.start_worker(system, spec)
    try:
        budget = 60 + n / 50 + (n / rate if rate else 0)
        done = worker.wait_for(["done"], timeout=budget)
    finally:
        worker.stop()
    ctx.redis.flush()
    wall = float(done["last"]) - float(done["first"])
    cpu = float(done["cpu_last"]) - float(done["cpu_first"])
    return {
        "rate": (n - 1) / wall if wall > 0 else float("inf"),
        "cpu_us_per_job": cpu / (n - 1) * 1e6,
    }


def run(ctx: Context, system: System) -> Result:
    rate = ctx.sizes.limited_rate
    free = _drain(ctx, system, None)
    limited = _drain(ctx, system, rate)
    return {
        "n": ctx.sizes.limited_n,
        "configured": rate,
        "unlimited": free,
        "limited": limited,
        "achieved_ratio": limited["rate"] / rate,
        "error_pct": abs(limited["rate"] / rate - 1) * 100,
        "limit_cpu_us_per_job": limited["cpu_us_per_job"] - free["cpu_us_per_job"],
    }


def headline(result: Result) -> str:
    free, limited = result["unlimited"], result["limited"]
    return (
        f"limited {limited['rate']:,.0f} jobs/s of {result['configured']:,}/s configured"
        f" ({result['achieved_ratio']:.3f}); unlimited {free['rate']:,.0f} jobs/s;"
        f" CPU {free['cpu_us_per_job']:.1f} -> {limited['cpu_us_per_job']:.1f} µs/job"
        f" ({result['limit_cpu_us_per_job']:+.1f})"
    )


def skip(system: System, sizes: Sizes) -> str | None:
    if system.name in STORED | DECLARED:
        return None
    return NOT_AVAILABLE.get(system.name, "n/a: no global rate limit in its adapter")


SCENARIO = Scenario(
    name="limited",
    title="limited drain: a global rate limit's accuracy and worker CPU (issue 16)",
    describe=lambda s: (
        f"N={s.limited_n:,} prefilled no-op jobs, drained unlimited then at {s.limited_rate}/s"
    ),
    skip_reason=skip,
    run=run,
    headline=headline,
)

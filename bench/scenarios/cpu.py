"""Issue 15's scenario, cpu: CPU-bound jobs in one worker process and in two.

``cpu_n`` jobs, each ``cpu_loops`` iterations of pure-Python arithmetic (about
3 ms of one core; the GIL is held throughout), are prefilled with no worker
running; then a worker starts with ``processes`` = 1, and again with 2, run the
way each system runs several processes: Bananas' ``bananas worker --processes``
supervisor (spawned ``bananas worker`` children), Dramatiq's processes (forked,
each with its threads) and Celery's prefork pool (``-c 2``; one process is its
threads pool). Completions are counted in Redis by the probe, since no one
process sees them all: the rate is ``(N - 1) / (last - first)`` from the wall
times the first and the N-th job wrote, so start-up is not counted. The speedup
is the two-process rate over the one-process rate of the same system in the
same run; on a 2-core machine 2x is the ceiling, and anything else running on
the machine takes from it.

For Bananas, the idle resident size of the whole process tree (the supervising
process plus its children, from ``/proc``) is read once the two-process worker
reported ready and settled, before the jobs are prefilled (Dramatiq and
Celery likewise, with their own process trees).
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.config import Sizes
from bench.scenarios.base import Context, Result, Scenario
from bench.scenarios.memory import rss_mb
from bench.systems import System

PROCESS_COUNTS = (1, 2)
SUPPORTED = ("bananas", "dramatiq", "celery")
POLL_S = 0.05


def tree(pid: int) -> list[int]:
    """``pid`` and every descendant of it (Linux ``/proc/<pid>/task/*/children``)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def _wait_done(ctx: Context, key: str, n: int, timeout: float) -> tuple[float, float]:
    deadline = time.monotonic() + timeout
    r = ctx.redis.client
    while True:
        done = int(r.get(key) or 0)
        last = r.get(f"{key}:last")
        if done >= n and last is not None:
            return float(r.get(f"{key}:first") or 0), float(last)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{done}/{n} cpu jobs done after {timeout:.0f} s")
        time.sleep(POLL_S)


def run_once(ctx: Context, system: System, processes: int) -> Result:
    n, loops = ctx.sizes.cpu_n, ctx.sizes.cpu_loops
    ctx.redis.flush()
    spec = ctx.worker_spec(system, work="cpu", cpu_loops=loops, expect=n, processes=processes)
    worker = ctx.start_worker(system, spec)
    try:
        ctx.settle()
        idle = sum(rss_mb(pid) for pid in tree(worker.pid))
        ctx.prefill(system, n)
        first, last = _wait_done(ctx, spec.counter_key, n, timeout=60 + n * loops * 1e-7)
    finally:
        worker.stop()
    ctx.redis.flush()
    seconds = last - first
    return {
        "processes": processes,
        "n": n,
        "seconds": seconds,
        "rate": (n - 1) / seconds if seconds > 0 else float("inf"),
        "idle_rss_mb": round(idle, 1),
    }


def run(ctx: Context, system: System) -> Result:
    runs = {str(p): run_once(ctx, system, p) for p in PROCESS_COUNTS}
    one, two = runs["1"]["rate"], runs["2"]["rate"]
    return {"runs": runs, "speedup": two / one if one else 0.0, "cpu_loops": ctx.sizes.cpu_loops}


def headline(result: Result) -> str:
    one, two = result["runs"]["1"], result["runs"]["2"]
    return (
        f"1 process {one['rate']:,.0f} jobs/s, 2 processes {two['rate']:,.0f} jobs/s "
        f"({result['speedup']:.2f}x); idle RSS {one['idle_rss_mb']:.0f} / "
        f"{two['idle_rss_mb']:.0f} MiB"
    )


def skip(system: System, sizes: Sizes) -> str | None:
    if system.name not in SUPPORTED:
        return "the harness runs several processes only for Bananas, Dramatiq and Celery"
    return None


SCENARIO = Scenario(
    name="cpu",
    title="CPU-bound jobs, one worker process vs two",
    describe=lambda s: (
        f"N={s.cpu_n} prefilled jobs of {s.cpu_loops:,} pure-Python loops, "
        f"processes {' and '.join(map(str, PROCESS_COUNTS))}"
    ),
    skip_reason=skip,
    run=run,
    headline=headline,
)

"""Scenario 7, memory: a worker's resident set size, idle and after many jobs.

One worker process (no-op handler, a ``progress`` event every
``memory_chunk / 10`` completions) starts with an empty queue; after it
settles its VmRSS is read from ``/proc/<pid>/status``. Jobs are then fed in
chunks of ``memory_chunk`` by client processes (bulk API where there is one),
each chunk only once the backlog is at most one chunk, so Redis never holds
more than two chunks. When the worker has completed each count in
``memory_counts`` (100k and 1M in the full run), the driver waits a second and
reads VmRSS again. A step that exceeds ``memory_step_budget_s`` stops feeding
and waiting; the RSS is then read at the count reached, which is reported
with it, and the later steps are not run.

The worker is the adapter process itself (every system here runs its worker
in one process), so one PID covers it; RQ's scheduler process is not started
in this scenario.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.procs import AdapterError, Child
from bench.scenarios.base import Context, Result, Scenario, always
from bench.systems import System

RSS_SETTLE_S = 1.0


def rss_mb(pid: int) -> float:
    """Return the VmRSS of ``pid`` in MiB; raises ``OSError`` if it is gone."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise OSError(f"no VmRSS for pid {pid}")


class _Progress:
    """The worker's completed count, from its ``progress`` events."""

    def __init__(self, worker: Child) -> None:
        self.worker = worker
        self.count = 0

    def wait(self, at_least: int, deadline: float) -> bool:
        """Wait until ``count >= at_least``; False if ``deadline`` passed first."""
        while self.count < at_least:
            event = self.worker.next_event(deadline)
            if event is None:
                return False
            if event.get("event") == "progress":
                self.count = max(self.count, int(event["count"]))
        return True


def _step(ctx: Context, system: System, progress: _Progress, fed: int, target: int) -> int:
    """Feed until ``target`` jobs are completed or the budget runs out; return fed."""
    chunk = ctx.sizes.memory_chunk
    budget_end = time.monotonic() + ctx.sizes.memory_step_budget_s
    while fed < target and time.monotonic() < budget_end:
        if not progress.wait(fed - chunk, budget_end):
            break
        size = min(chunk, target - fed)
        ctx.prefill(system, size)
        fed += size
    # Let the worker finish what was fed, within the same budget.
    progress.wait(fed, budget_end)
    return fed


def run(ctx: Context, system: System) -> Result:
    sizes = ctx.sizes
    ctx.redis.flush()
    every = max(1, sizes.memory_chunk // 10)
    worker = ctx.start_worker(system, ctx.worker_spec(system, progress_every=every))
    steps: list[Result] = []
    try:
        time.sleep(max(ctx.sizes.settle_s, 2.0))
        idle = rss_mb(worker.pid)
        progress = _Progress(worker)
        fed = 0
        for target in sizes.memory_counts:
            fed = _step(ctx, system, progress, fed, target)
            time.sleep(RSS_SETTLE_S)
            steps.append(
                {"target": target, "completed": progress.count, "rss_mb": rss_mb(worker.pid)}
            )
            if progress.count < target:
                break
    except OSError as exc:
        raise AdapterError(f"{system.name}: worker vanished: {exc}") from exc
    finally:
        worker.stop()
        ctx.redis.flush()
    return {"idle_rss_mb": idle, "steps": steps}


def headline(result: Result) -> str:
    parts = [f"idle {result['idle_rss_mb']:.1f} MiB"]
    for step in result["steps"]:
        label = f"{step['target']:,}"
        if step["completed"] < step["target"]:
            label += f" (only {step['completed']:,} done within the budget)"
        parts.append(f"after {label}: {step['rss_mb']:.1f} MiB")
    return ", ".join(parts)


SCENARIO = Scenario(
    name="memory",
    title="worker RSS, idle and after many jobs",
    describe=lambda s: (
        "VmRSS idle, then after "
        + " and ".join(f"{c:,}" for c in s.memory_counts)
        + f" jobs (fed in chunks of {s.memory_chunk:,}; {s.memory_step_budget_s:.0f} s per step)"
    ),
    skip_reason=always,
    run=run,
    headline=headline,
)

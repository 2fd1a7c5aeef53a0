"""Issue 16's fair-share latency (``fairshare``): a small tenant behind a big one.

With no worker running, ``fair_big_n`` no-op jobs of one group (``big``) are
prefilled, then ``fair_small_n`` of another (``small``), on the same routing
key and priority. One worker process then drains them all, its probe
reporting every start and completion (``report="each"``; payload indexes
from :data:`SMALL_FIRST_INDEX` are the small group's). Reported, from the
first completion of the drain:

- **small group done ms**: until the last small job completed;
- **big jobs before**: how many big jobs completed before it.

The same drain runs again with no groups (plain FIFO: the small jobs are
simply behind the big ones), so the run shows what fair share changes; with
round robin across groups the small jobs finish within a few turns of the
worker's slots, whatever ``fair_big_n`` is. The per-job events cost both
drains the same.

Only systems that serve groups round robin run it; the others print "n/a"
with the reason (:data:`NOT_AVAILABLE`).
"""

from __future__ import annotations

from bench.config import Sizes
from bench.scenarios.base import Context, Result, Scenario
from bench.systems import System

SMALL_FIRST_INDEX = 1_000_000_000
"""Payload index of the small group's first job (the big group's start at 0)."""

NOT_AVAILABLE = {
    "rq": "n/a: RQ serves a queue in FIFO order; no groups",
    "huey": "n/a: Huey serves a queue in FIFO order (or by priority); no groups",
    "dramatiq": "n/a: Dramatiq serves a queue in FIFO order; no groups",
    "celery": "n/a: Celery serves a queue in FIFO order; no groups",
    "arq": "n/a: arq serves a queue by due time; no groups",
    "saq": "n/a: SAQ serves a queue in FIFO order; no groups",
    "taskiq": "n/a: Taskiq serves a queue in FIFO order; no groups",
    "asynq": "n/a: asynq has no groups served round robin (its groups aggregate tasks)",
}


def _drain(ctx: Context, system: System, grouped: bool) -> Result:
    big, small = ctx.sizes.fair_big_n, ctx.sizes.fair_small_n
    ctx.redis.flush()
    ctx.prefill(
        system,
        big,
        group="big" if grouped else "",
        tail_n=small,
        tail_group="small" if grouped else "",
        tail_first_index=SMALL_FIRST_INDEX,
    )
    spec = ctx.worker_spec(system, work="noop", report="each", expect=big + small)
    worker = ctx.start_worker(system, spec)
    done_at: list[tuple[float, bool]] = []
    try:
        budget = 60 + (big + small) / 50
        while True:
            event = worker.wait_for(["completed", "done"], timeout=budget)
            if event["event"] == "done":
                break
            done_at.append((float(event["t"]), int(event["i"]) >= SMALL_FIRST_INDEX))
    finally:
        worker.stop()
    ctx.redis.flush()
    first = min(t for t, _ in done_at)
    small_last = max(t for t, is_small in done_at if is_small)
    big_before = sum(1 for t, is_small in done_at if not is_small and t < small_last)
    return {
        "small_done_ms": (small_last - first) * 1e3,
        "all_done_ms": (max(t for t, _ in done_at) - first) * 1e3,
        "big_before": big_before,
    }


def run(ctx: Context, system: System) -> Result:
    return {
        "n": ctx.sizes.fair_big_n,
        "small": ctx.sizes.fair_small_n,
        "concurrency": system.concurrency,
        "groups": _drain(ctx, system, grouped=True),
        "fifo": _drain(ctx, system, grouped=False),
    }


def headline(result: Result) -> str:
    fair, fifo = result["groups"], result["fifo"]
    return (
        f"small group done after {fair['small_done_ms']:,.0f} ms"
        f" ({fair['big_before']:,} big jobs before it) of {fair['all_done_ms']:,.0f} ms;"
        f" without groups {fifo['small_done_ms']:,.0f} ms ({fifo['big_before']:,} before)"
    )


def skip(system: System, sizes: Sizes) -> str | None:
    if system.name == "bananas":
        return None
    return NOT_AVAILABLE.get(system.name, "n/a: no groups in its adapter")


SCENARIO = Scenario(
    name="fairshare",
    title="fair share: a small group's jobs queued behind a big group's (issue 16)",
    describe=lambda s: (
        f"{s.fair_big_n:,} jobs of group big, then {s.fair_small_n} of group small,"
        " one worker process; again without groups"
    ),
    skip_reason=skip,
    run=run,
    headline=headline,
)

"""Issue 15's scenario, queued: Redis memory per queued job.

With no worker running, the private Redis is flushed and its ``INFO memory``
``used_memory`` read; ``queued_n`` jobs (the usual ``{"i": k, "t": 0.0}``
payload) are then prefilled the same way the drain scenario does (bulk API
where there is one), and ``used_memory`` is read again. The figure is the
difference over ``queued_n``: every byte the system keeps in Redis for a job
that waits, its record, its place in the queue and the data structures'
overhead. ``used_memory`` counts the allocator's view (jemalloc), so a few
kilobytes of noise from the driver's own connection do not matter at this
size.

For Bananas the mean length of the stored job record itself (``HSTRLEN`` of
up to :data:`SAMPLE` records of the route's ``jobs`` hash) is reported beside
it: issue 15's target is a per-job figure within 1.5x of the record's size.
The other systems store their messages in their own layouts, so only their
per-job total is reported.
"""

from __future__ import annotations

import time

from bananas.keys import KeySpace
from bench.protocol import QUEUE
from bench.scenarios.base import Context, Result, Scenario, always
from bench.systems import System

SAMPLE = 200
"""Job records sampled for Bananas' mean record length."""
SETTLE_S = 0.2
"""Pause after a flush or a prefill before ``used_memory`` is read."""


def used_memory(ctx: Context) -> int:
    """Redis' ``used_memory`` in bytes, after a short settle."""
    time.sleep(SETTLE_S)
    return int(ctx.redis.client.info("memory")["used_memory"])


def bananas_record_bytes(ctx: Context) -> float | None:
    """Mean length of Bananas' stored job records on the bench route; None if none."""
    r = ctx.redis.client
    jobs = KeySpace().route(QUEUE).jobs
    ids: list[str] = list(r.hrandfield(jobs, SAMPLE) or [])  # type: ignore[arg-type]
    if not ids:
        return None
    lengths = [int(r.hstrlen(jobs, job_id)) for job_id in ids]
    return sum(lengths) / len(lengths)


def run(ctx: Context, system: System) -> Result:
    n = ctx.sizes.queued_n
    ctx.redis.flush()
    try:
        before = used_memory(ctx)
        ctx.prefill(system, n)
        after = used_memory(ctx)
        keys = int(ctx.redis.client.dbsize())
        record = bananas_record_bytes(ctx) if system.name == "bananas" else None
    finally:
        ctx.redis.flush()
    result: Result = {
        "n": n,
        "used_before": before,
        "used_after": after,
        "bytes_per_job": (after - before) / n,
        "keys": keys,
    }
    if record is not None:
        result["record_bytes"] = record
        result["overhead_ratio"] = result["bytes_per_job"] / record
    return result


def headline(result: Result) -> str:
    line = f"{result['bytes_per_job']:,.0f} B per queued job ({result['keys']:,} keys)"
    if "record_bytes" in result:
        line += (
            f"; job record {result['record_bytes']:,.0f} B "
            f"({result['overhead_ratio']:.2f}x the record)"
        )
    return line


SCENARIO = Scenario(
    name="queued",
    title="Redis memory per queued job",
    describe=lambda s: f"INFO memory used_memory before and after {s.queued_n:,} prefilled jobs",
    skip_reason=always,
    run=run,
    headline=headline,
)

"""Scenario 9, workflows: the per-step overhead of a chain, the fan-in rate of a chord.

One worker process with results on and the no-op handler, so what is measured is the
workflow machinery: for a chain, each step is released only after the previous one
completed and its result was recorded; for a chord, every member's completion is
counted and the callback is released once. The client submits a 3-step (3-member)
warm-up, then one chain of ``chain_steps`` steps (one chord of ``chord_members``
members plus a callback) and waits for its result: **steps/s** (members/s) is that
count over the submit-to-result time. Only systems with a chain and chord API in
their adapter run it (Bananas and Celery's canvas).
"""

from __future__ import annotations

from bench.config import Sizes
from bench.scenarios.base import Context, Result, Scenario
from bench.systems import System

CANVAS = ("bananas", "celery")
STEP_TIMEOUT_S = 1.0
"""Budget per step or member on top of a fixed minute."""


def skip_reason(system: System, sizes: Sizes) -> str | None:
    return None if system.name in CANVAS else "no chain/chord API in its adapter"


def _run_one(ctx: Context, system: System, mode: str, n: int) -> float:
    timeout = 60 + n * STEP_TIMEOUT_S
    spec = ctx.client_spec(mode, n, timeout_s=timeout, results=True)
    result = ctx.run_client(system, spec, timeout=timeout + 60)
    return float(result["rate"])


def run(ctx: Context, system: System) -> Result:
    ctx.redis.flush()
    worker = ctx.start_worker(system, ctx.worker_spec(system, results=True))
    try:
        ctx.settle()
        steps = _run_one(ctx, system, "chain", ctx.sizes.chain_steps)
        members = _run_one(ctx, system, "chord", ctx.sizes.chord_members)
    finally:
        worker.stop()
    ctx.redis.flush()
    return {
        "chain_steps": ctx.sizes.chain_steps,
        "chain_steps_per_s": steps,
        "chord_members": ctx.sizes.chord_members,
        "chord_members_per_s": members,
    }


def headline(result: Result) -> str:
    return (
        f"chain {result['chain_steps_per_s']:.0f} steps/s, "
        f"chord fan-in {result['chord_members_per_s']:.0f} members/s"
    )


SCENARIO = Scenario(
    name="workflow",
    title="workflows: chain steps/s and chord fan-in members/s (no-op steps)",
    describe=lambda s: (
        f"a chain of {s.chain_steps} steps, a chord of {s.chord_members} "
        "members, one worker process, results on"
    ),
    skip_reason=skip_reason,
    run=run,
    headline=headline,
)

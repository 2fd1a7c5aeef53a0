"""Sizes of every scenario for the full run and for ``--quick``, and paths.

The full sizes follow issue 7 (20,000 jobs per throughput run, 200 jobs at
idle, 100k and 1M jobs for memory); ``--quick`` is a smoke run for CI that
only has to finish in a few minutes, so its numbers mean little.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
CACHE_DIR = BENCH_DIR / ".cache"


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Counts, rates and time limits of one run."""

    enqueue_n: int
    """Jobs submitted one by one, and in bulk."""
    bulk_batch: int
    """Jobs per bulk call."""
    drain_n: int
    """Jobs prefilled before the worker starts."""
    idle_n: int
    """Jobs submitted at idle, one every ``idle_interval_s``."""
    idle_interval_s: float
    loaded_fraction: float
    """Submit rate of the loaded-latency run, as a fraction of the drain rate."""
    loaded_seconds: float
    """How long the loaded-latency run submits."""
    roundtrip_n: int
    delayed_n: int
    delayed_lead_s: float
    """Time from the start of submission to the first due time."""
    delayed_spacing_s: float
    delayed_max_slack_s: float
    """Skip the delayed scenario for systems whose scheduler may be later
    than this by design (taskiq re-reads schedules once a minute)."""
    crash_timeout_s: float
    """How long the crash scenario waits for held jobs to run elsewhere."""
    memory_counts: tuple[int, ...]
    """Completed-job counts at which worker RSS is read (after the idle read)."""
    memory_chunk: int
    """Jobs per feed; the backlog never exceeds two chunks."""
    memory_step_budget_s: float
    """Time limit per memory step; past it the RSS is read at the count reached."""
    settle_s: float = 1.0
    """Pause between a worker's ready event and the first measured job."""
    cpu_n: int = 2_000
    """Jobs prefilled for each run of the cpu scenario."""
    cpu_loops: int = 60_000
    """Pure-Python loop iterations per cpu job (about 3 ms of one core here)."""
    chain_steps: int = 200
    """Steps of the workflow scenario's chain (no-op steps)."""
    chord_members: int = 2_000
    """Members of the workflow scenario's chord (no-op members and callback)."""
    cpu_per_job_n: int = 50_000
    """Jobs prefilled for the cpu_per_job scenario's drain."""
    queued_n: int = 200_000
    """Jobs held in Redis by the queued-memory scenario (no worker running)."""
    limited_n: int = 10_000
    """Jobs prefilled for each drain of the limited scenario (unlimited, then limited)."""
    limited_rate: int = 500
    """The rate limit (jobs/s) of the limited scenario's second drain."""
    fair_big_n: int = 20_000
    """Jobs of the big group, queued first, in the fairshare scenario."""
    fair_small_n: int = 10
    """Jobs of the small group, queued after the big group's, in the fairshare scenario."""


FULL = Sizes(
    enqueue_n=20_000,
    bulk_batch=1_000,
    drain_n=20_000,
    idle_n=200,
    idle_interval_s=0.010,
    loaded_fraction=0.8,
    loaded_seconds=10.0,
    roundtrip_n=200,
    delayed_n=200,
    delayed_lead_s=2.0,
    delayed_spacing_s=0.050,
    delayed_max_slack_s=120.0,
    crash_timeout_s=150.0,
    memory_counts=(100_000, 1_000_000),
    memory_chunk=50_000,
    memory_step_budget_s=300.0,
)

QUICK = Sizes(
    enqueue_n=1_000,
    bulk_batch=100,
    drain_n=1_000,
    idle_n=100,
    idle_interval_s=0.010,
    loaded_fraction=0.8,
    loaded_seconds=2.0,
    roundtrip_n=10,
    delayed_n=20,
    delayed_lead_s=1.5,
    delayed_spacing_s=0.050,
    delayed_max_slack_s=20.0,
    crash_timeout_s=15.0,
    memory_counts=(500, 1_500),
    memory_chunk=500,
    memory_step_budget_s=30.0,
    settle_s=0.5,
    cpu_n=300,
    chain_steps=20,
    chord_members=200,
    queued_n=20_000,
    cpu_per_job_n=20_000,
    limited_n=1_000,
    fair_big_n=1_000,
)

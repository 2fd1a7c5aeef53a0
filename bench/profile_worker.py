"""``python -m bench.profile_worker``: profile one worker draining no-op jobs in-process.

A private Redis is started (as ``python -m bench`` does), ``--n`` no-op jobs
are prefilled through ``AsyncClient.submit_many``, and one Bananas worker
(built like the bench adapter's: concurrency 10, metrics server and cron off)
drains them in this same process. ``time.process_time()`` is read at the first
and at the last completion, so the printed µs/job is this process's CPU per
job, start-up left out; with ``--profile`` (the default) cProfile runs over
the same span (timed by process CPU, not wall time, so that waiting for
Redis is not counted), which inflates the figure, and the top functions by own time
are written to ``bench/results/profile-<timestamp>.txt``. Use ``--no-profile``
for a before/after figure of a change; ``--repeat`` drains several times and
prints each figure and the median. ``--sample`` profiles by sampling instead: a
``SIGPROF`` every 0.5 ms of process CPU records the Python stack, which distorts far
less than cProfile (whose per-call hooks cost more than a no-op job's own functions);
the functions by own and by inclusive share of the samples go to
``bench/results/sample-<timestamp>.txt``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime
import io
import pstats
import signal
import statistics
import sys
import time
from collections import Counter
from types import FrameType

from bananas import AsyncClient, Job, JobSpec
from bananas.worker_runtime import Registry, Settings, build_worker
from bench.config import RESULTS_DIR
from bench.protocol import QUEUE
from bench.redis_server import PrivateRedis

JOB_NAME = "bench_job"
BATCH = 1_000
TOP = 15


#: Seconds of process CPU between two samples of ``--sample``.
SAMPLE_EVERY = 0.0005


class Sampler:
    """Counts the Python stacks seen at every ``SIGPROF`` (process CPU time)."""

    def __init__(self) -> None:
        self.own: Counter[str] = Counter()
        self.inclusive: Counter[str] = Counter()
        self.samples = 0

    def enable(self) -> None:
        signal.signal(signal.SIGPROF, self._sample)
        signal.setitimer(signal.ITIMER_PROF, SAMPLE_EVERY, SAMPLE_EVERY)

    def disable(self) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, signal.SIG_DFL)

    def _sample(self, signum: int, frame: FrameType | None) -> None:
        self.samples += 1
        seen = set()
        leaf = True
        while frame is not None:
            code = frame.f_code
            where = f"{code.co_filename.rsplit('/', 2)[-1]}:{code.co_name}"
            if leaf:
                self.own[where] += 1
                leaf = False
            if where not in seen:
                seen.add(where)
                self.inclusive[where] += 1
            frame = frame.f_back

    def report(self, n: int) -> str:
        total = max(1, self.samples)
        lines = [f"sampled drain of {n:,} no-op jobs: {self.samples} samples"]
        for title, counter in (("own", self.own), ("inclusive", self.inclusive)):
            lines.append(f"\n-- by {title} share --")
            for where, count in counter.most_common(40):
                lines.append(f"{100 * count / total:6.1f} %  {where}")
        return "\n".join(lines) + "\n"


class Drain:
    """Counts completions; records CPU time at the first and the last one."""

    def __init__(self, n: int, profiler: cProfile.Profile | Sampler | None) -> None:
        self.n = n
        self.count = 0
        self.cpu_first = 0.0
        self.cpu_last = 0.0
        self.profiler = profiler
        self.done = asyncio.Event()

    def job(self) -> None:
        self.count += 1
        if self.count == 1:
            if self.profiler is not None:
                self.profiler.enable()
            self.cpu_first = time.process_time()
        if self.count == self.n:
            self.cpu_last = time.process_time()
            if self.profiler is not None:
                self.profiler.disable()
            self.done.set()


async def drain_once(url: str, n: int, profiler: cProfile.Profile | Sampler | None) -> float:
    """Prefill ``n`` jobs, drain them with one worker; return µs of CPU per job."""
    client = AsyncClient(url, success_ttl=0.0)
    for start in range(0, n, BATCH):
        specs = [
            JobSpec(JOB_NAME, {"i": i, "t": 0.0}, routing_key=QUEUE)
            for i in range(start, min(n, start + BATCH))
        ]
        await client.submit_many(specs)
    await client.close()
    drain = Drain(n, profiler)
    registry = Registry()

    @registry.handler(JOB_NAME)
    async def job(job: Job) -> bool:
        drain.job()
        return True

    settings = Settings(
        redis_url=url,
        concurrency=10,
        routing_keys=(QUEUE,),
        metrics_port=0,
        enable_scheduler=False,
        log_level="WARNING",
    )
    worker = build_worker(registry, settings)
    await worker.start()
    try:
        await asyncio.wait_for(drain.done.wait(), timeout=60 + n / 100)
    finally:
        await worker.stop(grace=2.0)
    return (drain.cpu_last - drain.cpu_first) / (n - 1) * 1e6


def summary(profiler: cProfile.Profile, n: int) -> str:
    """The top functions by own time, as pstats prints them."""
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(TOP)
    return f"cProfile of an in-process drain of {n:,} no-op jobs, top {TOP} by own CPU time\n" + (
        out.getvalue()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_worker")
    parser.add_argument("--n", type=int, default=20_000, help="jobs per drain")
    parser.add_argument("--repeat", type=int, default=1, help="drains (the median is printed)")
    parser.add_argument("--profile", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--sample", action="store_true", help="sample stacks (SIGPROF) instead")
    args = parser.parse_args(argv)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    redis = PrivateRedis(RESULTS_DIR / f"profile-{stamp}-redis")
    redis.start()
    figures = []
    try:
        for _ in range(args.repeat):
            redis.flush()
            profiler: cProfile.Profile | Sampler | None = None
            if args.sample:
                profiler = Sampler()
            elif args.profile:
                profiler = cProfile.Profile(time.process_time)
            figures.append(asyncio.run(drain_once(redis.url, args.n, profiler)))
            print(f"{figures[-1]:.1f} µs CPU per job", flush=True)
            if isinstance(profiler, Sampler):
                path = RESULTS_DIR / f"sample-{stamp}.txt"
                path.write_text(profiler.report(args.n))
                print(f"samples: {path}")
            elif profiler is not None:
                path = RESULTS_DIR / f"profile-{stamp}.txt"
                path.write_text(summary(profiler, args.n))
                print(f"profile: {path}")
    finally:
        redis.stop()
    print(f"median of {len(figures)}: {statistics.median(figures):.1f} µs CPU per job")
    return 0


if __name__ == "__main__":
    sys.exit(main())

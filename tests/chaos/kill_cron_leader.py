"""Cron failover in one process: replicas of the cron scheduler on a scaled clock,
the leader crashing; every slot fires exactly once, with rising fencing tokens."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bananas import AsyncClient, Job, Schedule
from bananas.worker_runtime import CronScheduler, Registry, Worker
from bananas.worker_runtime.leader import RedisLeaderElector
from bananas.worker_runtime.metrics import Metrics
from tests.chaos.common import Report, new_tag
from tests.support.waiting import eventually_async


class ScaledClock:
    """Wall-clock time that runs ``speed`` times faster than real time from ``start``:
    cron minutes pass in seconds while leases and socket timeouts stay real."""

    def __init__(self, start: float, speed: float) -> None:
        self.start, self.speed = start, speed
        self.t0 = time.monotonic()

    def __call__(self) -> float:
        return self.start + (time.monotonic() - self.t0) * self.speed


class CrashableElector:
    """A real :class:`RedisLeaderElector` that can be made to die without releasing."""

    def __init__(self, inner: RedisLeaderElector) -> None:
        self.inner = inner
        self.identity = inner.identity
        self.lease_duration = inner.lease_duration
        self.crashed = False

    async def acquire_or_renew(self) -> int | None:
        return await self.inner.acquire_or_renew()

    async def release(self) -> None:
        if not self.crashed:  # a SIGKILLed process never gets to release
            await self.inner.release()

    async def close(self) -> None:
        await self.inner.close()


@dataclass
class _Replica:
    client: AsyncClient
    elector: CrashableElector
    scheduler: CronScheduler
    task: asyncio.Task[None]


async def cron_failover(
    url: str, kills: int, *, lease: float = 0.6, speed: float = 20.0, deadline: float = 50.0
) -> Report:
    """In-process cron schedulers under a real :class:`RedisLeaderElector` whose clock runs
    ``speed`` times faster than real time (a minute slot every 60/speed s), with an
    in-process worker running what they fire. The leader's task is cancelled without
    releasing its lock (a crash) ``kills`` times, two slots apart; a new standby is
    started each time. Recovery: from the crash until a standby leads.

    Every minute slot between the first fire and the end must have run exactly once:
    none fired twice, none skipped (a failover, ~lease + a tick, is well inside the
    ``deadline`` s starting deadline in cron time).
    """
    prefix = f"cron{new_tag()}"
    start = datetime.now(UTC).replace(second=30, microsecond=0).timestamp()
    clock = ScaledClock(start, speed)
    ran: list[str] = []
    registry = Registry()

    @registry.handler("tick")
    async def tick(job: Job) -> None:
        ran.append(job.id)

    replicas: list[_Replica] = []
    names = iter(range(1000))

    async def replica() -> _Replica:
        client = AsyncClient(url, prefix=prefix, clock=clock)
        elector = CrashableElector(
            RedisLeaderElector(client, "cron", f"replica-{next(names)}", lease)
        )
        scheduler = CronScheduler(client, elector, interval=0.05, clock=clock, metrics=Metrics())
        r = _Replica(client, elector, scheduler, asyncio.create_task(scheduler.run()))
        replicas.append(r)
        return r

    async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
        async def checked() -> bool:
            return check()

        await eventually_async(checked, timeout, interval=0.01, what=what)

    def slot_seconds() -> float:
        return 60 / speed

    began = time.monotonic()
    async with AsyncClient(url, prefix=prefix) as wclient:
        await wclient.register_schedule(
            Schedule(
                id="tick",
                cron="* * * * *",
                job="tick",
                starting_deadline_seconds=deadline,
                max_retries=0,
            )
        )
        worker = Worker(registry, client=wclient, metrics_port=0, concurrency=4)
        await worker.start()
        takeovers: list[float] = []
        tokens: list[int | None] = []
        try:
            live = [await replica(), await replica()]
            for _ in range(kills):
                await until(lambda: any(r.scheduler.is_leader for r in live), 10, "a leader")
                fired_before = len(ran)
                await until(
                    lambda n=fired_before: len(ran) >= n + 2, 10 * slot_seconds(), "2 slots"
                )
                leader = next(r for r in live if r.scheduler.is_leader)
                leader.elector.crashed = True
                leader.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await leader.task
                t = time.monotonic()
                live.remove(leader)
                await until(lambda: any(r.scheduler.is_leader for r in live), 10, "a takeover")
                takeovers.append(time.monotonic() - t)
                tokens += [r.scheduler.token for r in live if r.scheduler.is_leader]
                live.append(await replica())
            fired_before = len(ran)
            await until(lambda n=fired_before: len(ran) >= n + 2, 10 * slot_seconds(), "2 slots")
            end = clock()
        finally:
            for r in replicas:
                r.task.cancel()
            for r in replicas:
                with contextlib.suppress(asyncio.CancelledError):
                    await r.task
                await r.client.close()
            await worker.stop()
        status = await wclient.schedule_status("tick")
    stamps = sorted(int(j.rsplit(":", 1)[1]) for j in ran)
    distinct = sorted(set(stamps))
    expected = set(range(distinct[0], int(end) // 60 * 60 + 1, 60)) if distinct else set()
    # The last slot may have been due a moment before ``end`` and not run yet.
    missing = sorted(expected - set(distinct) - {int(end) // 60 * 60})
    return Report(
        f"cron failover (in-process, x{speed:g} clock)",
        len(distinct),
        len(missing),
        len(stamps) - len(distinct),
        kills,
        takeovers,
        time.monotonic() - began,
        {
            "lease s (real)": lease,
            "starting deadline s (cron time)": deadline,
            "failover in cron seconds (max)": round(max(takeovers, default=0) * speed, 1),
            "status run_count / skipped_count": (
                f"{status.run_count} / {status.skipped_count}" if status else None
            ),
            "missing slots": missing,
            "fencing tokens": tokens,
        },
    )


# -- command line ----------------------------------------------------------------------------

"""The cron scheduler: fires cron schedules under leader election.

(Delayed jobs and retries are moved into their queues by ``promoter.Promoter``.)

:class:`CronScheduler` fires schedules defined in code (``Registry.cron``) or
registered in Redis (by applications or the operator). Only the leader fires (see
``leader``), but correctness does not depend on it: every fire has a job id derived
from (schedule, slot), so a slot is submitted once however many schedulers race.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from bananas import tracing
from bananas.client import AsyncClient
from bananas.errors import BananasError
from bananas.models import ConcurrencyPolicy, JobStatus, Schedule, ScheduleStatus
from bananas.worker_runtime.clocksync import RedisClock
from bananas.worker_runtime.cron import Decision, check_schedule, decide, fire_id
from bananas.worker_runtime.leader import LeaderElector
from bananas.worker_runtime.metrics import Metrics

logger = logging.getLogger(__name__)

LIVE = (JobStatus.PENDING, JobStatus.SCHEDULED, JobStatus.PROCESSING)
#: How often the leader republishes its code schedules, and how long the list lives.
PUBLISH_EVERY = 10.0
PUBLISHED_TTL_MS = 35_000


class CronScheduler:
    """Fires cron schedules while this process is the leader (seed: ``CronScheduler``)."""

    def __init__(
        self,
        client: AsyncClient,
        elector: LeaderElector,
        *,
        schedules: Sequence[Schedule] = (),
        interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        for schedule in schedules:
            check_schedule(schedule)
        self.client = client
        self.elector = elector
        self.code_schedules = list(schedules)
        self.interval = interval
        self.clock = clock
        self.metrics = metrics
        self.token: int | None = None
        #: This host's clock corrected to Redis' (slots are chosen by Redis' time).
        self.redis_clock = RedisClock(
            client, clock=clock, gauge=metrics.clock_offset if metrics else None
        )
        self._published_at = -PUBLISH_EVERY

    @property
    def is_leader(self) -> bool:
        return self.token is not None

    async def run(self) -> None:
        """Elect, and fire due slots while leading, until cancelled; then step down."""
        try:
            while True:
                await self.step()
                await asyncio.sleep(min(self.interval, self.elector.lease_duration / 3))
        finally:
            if self.token is not None:
                await self.elector.release()
                self.token = None
            await self.elector.close()

    async def step(self) -> None:
        """One tick: renew or take leadership; if leading, fire what is due."""
        token = await self.elector.acquire_or_renew()
        if token != self.token:
            logger.info(
                "scheduler %s %s",
                self.elector.identity,
                f"leads (token {token})" if token is not None else "is standby",
            )
        self.token = token
        if self.metrics:
            self.metrics.leader.set(1 if token is not None else 0)
        if token is None:
            return
        try:
            await self.redis_clock.measure()
            await self.tick()
        except BananasError as exc:
            logger.warning("cron tick failed: %s", exc)

    async def schedules(self) -> list[Schedule]:
        """Code schedules plus those registered in Redis (Redis wins on the same id)."""
        merged = {s.id: s for s in self.code_schedules}
        for schedule in await self.client.schedules():
            merged[schedule.id] = schedule
        return list(merged.values())

    async def publish_code_schedules(self) -> None:
        """Tell ``bananas schedules`` which schedules this leader fires from code (at most
        every :data:`PUBLISH_EVERY` s; the list expires when no leader renews it)."""
        now = time.monotonic()
        if now < self._published_at + PUBLISH_EVERY:
            return
        op = self.client.broker.put_code_schedules(self.code_schedules, PUBLISHED_TTL_MS)
        await self.client.run(op)
        self._published_at = now

    async def tick(self) -> None:
        """Fire every due schedule once."""
        await self.publish_code_schedules()
        now = datetime.fromtimestamp(self.redis_clock.now(), UTC)
        for schedule in await self.schedules():
            try:
                await self._tick_one(schedule, now)
            except ValueError as exc:
                await self._record_error(schedule, str(exc))

    async def _tick_one(self, schedule: Schedule, now: datetime) -> None:
        check_schedule(schedule)
        status = await self.client.schedule_status(schedule.id)
        status = await self._follow_last_job(schedule, status)
        decision = decide(schedule, status, now)
        if status is None:
            status = ScheduleStatus(schedule_id=schedule.id)
        status.next_schedule_time = decision.next_time
        status.timing = schedule.timing()
        status.skipped_count += decision.skipped
        if decision.slot is not None:
            await self._fire(schedule, status, decision)
        elif decision.reason and decision.skipped:
            logger.info(
                "schedule %s skipped %d slot(s): %s", schedule.id, decision.skipped, decision.reason
            )
        await self.client.run(self.client.broker.put_schedule_status(status))

    async def _fire(self, schedule: Schedule, status: ScheduleStatus, decision: Decision) -> None:
        """Fire ``decision.slot``, in the fire's span when tracing is on (``bananas.tracing``)."""
        slot = decision.slot
        assert slot is not None
        job_id = fire_id(schedule.id, slot)
        with tracing.fire(
            tracing.tracer(),
            schedule.id,
            slot.astimezone(UTC).isoformat(),
            schedule.cron,
            schedule.timezone,
            job_id,
        ) as span:
            outcome = await self._fire_slot(schedule, status, slot, job_id)
            if span is not None:
                span.set_attribute("bananas.schedule.outcome", outcome)

    async def _fire_slot(
        self, schedule: Schedule, status: ScheduleStatus, slot: datetime, job_id: str
    ) -> str:
        """Submit ``slot``'s job as ``job_id`` under the schedule's concurrency policy;
        returns what happened: ``fired``, ``replaced`` (the previous job was cancelled
        first) or ``skipped`` (the previous job still runs)."""
        outcome = "fired"
        previous = status.last_job_id
        if previous and schedule.concurrency_policy is not ConcurrencyPolicy.ALLOW:
            job = await self.client.get_job(previous, schedule.routing_key)
            if job is not None and job.status in LIVE:
                if schedule.concurrency_policy is ConcurrencyPolicy.FORBID:
                    status.skipped_count += 1
                    logger.info(
                        "schedule %s: slot %s skipped, previous job %s is %s",
                        schedule.id,
                        slot.isoformat(),
                        previous,
                        job.status.value,
                    )
                    return "skipped"
                await self.client.cancel(previous, schedule.routing_key)
                outcome = "replaced"
        await self.client.submit(
            schedule.job,
            schedule.payload,
            priority=schedule.priority,
            routing_key=schedule.routing_key,
            job_id=job_id,
            max_retries=schedule.max_retries,
            description=f"cron {schedule.id} at {slot.isoformat()}",
        )
        status.last_schedule_time = slot
        status.last_job_id = job_id
        status.run_count += 1
        if self.metrics:
            self.metrics.cron_fires.labels(schedule.id).inc()
        logger.info("schedule %s fired slot %s as job %s", schedule.id, slot.isoformat(), job_id)
        return outcome

    async def _follow_last_job(
        self, schedule: Schedule, status: ScheduleStatus | None
    ) -> ScheduleStatus | None:
        """Copy the outcome of the last fire's job into the status."""
        if status is None or not status.last_job_id:
            return status
        result = await self.client.get_result(status.last_job_id, schedule.routing_key)
        if result is None:
            return status
        if result.is_success():
            if (
                status.last_successful_time is None
                or result.completed_at > status.last_successful_time
            ):
                status.last_successful_time = result.completed_at
                status.last_error = ""
        elif result.error:
            status.last_error = result.error
        return status

    async def _record_error(self, schedule: Schedule, error: str) -> None:
        logger.error("schedule %s is invalid: %s", schedule.id, error)
        status = await self.client.schedule_status(schedule.id) or ScheduleStatus(
            schedule_id=schedule.id
        )
        status.last_error = error
        await self.client.run(self.client.broker.put_schedule_status(status))

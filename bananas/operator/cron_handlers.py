"""kopf handlers for CronSchedule: thin glue between kopf, the APIs and the pure functions.

- :func:`reconcile` (create, update, resume): check what only the operator can
  check (time zone, cron syntax), register the schedule in Redis, and apply the
  namespace's scheduler Deployment (:mod:`~bananas.operator.scheduler`).
- :func:`sync` (a kopf timer): copy what the scheduler did from Redis into the
  status, post an Event for every fire, skipped slot and fire error, and
  re-register the schedule (an idempotent write), so a Redis that lost its
  data gets its schedules back.
- :func:`delete` (behind the ``bananas.dev/finalizer`` finalizer): unregister
  the schedule. If Redis stays unreachable through ``delete_retries`` attempts
  the schedule is let go with a Warning Event rather than blocking the
  namespace's deletion for ever.

Redis being unreachable is a condition (``RedisReachable=False``) and an Event,
then a retry after ``retry_delay``; it never crashes the operator.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf

from bananas.client import AsyncClient
from bananas.errors import BananasError, ConfigError, InvalidJobError
from bananas.models import JobStatus
from bananas.operator.conditions import FALSE, TRUE, Condition, merge_conditions
from bananas.operator.context import REDIS_TIMEOUT, OperatorContext, object_lock
from bananas.operator.cronschedule import (
    REASON_INVALID_SCHEDULE,
    CronObservation,
    Problem,
    check_spec,
    next_fire,
    problem_conditions,
    registered_conditions,
    render_status,
    schedule_id,
    to_schedule,
)
from bananas.operator.kube import KubernetesApiError
from bananas.operator.meta import owner_of
from bananas.operator.pool_status import REASON_INVALID_SPEC, REASON_REDIS_UNREACHABLE
from bananas.operator.scheduler import field_manager, render_scheduler
from bananas.operator.specs import CronScheduleSpec, RedisRef, SpecError, parse_cronschedule
from bananas.operator.timefmt import format_time

logger = logging.getLogger(__name__)

KIND = "CronSchedule"
REASON_REGISTERED = "Registered"
REASON_UNREGISTERED = "Unregistered"
REASON_UNREGISTER_FAILED = "UnregisterFailed"
REASON_SCHEDULER_FAILED = "SchedulerNotApplied"


class RedisProblem(Exception):
    """Redis (or its Secret) could not be used; ``reason`` is the condition reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


async def _client(ctx: OperatorContext, namespace: str, ref: RedisRef) -> AsyncClient:
    try:
        return await ctx.redis_for(namespace, ref)
    except KubernetesApiError as exc:
        reason = "RedisSecretNotFound" if exc.not_found else "SecretUnreadable"
        raise RedisProblem(reason, exc.message) from exc
    except ConfigError as exc:
        raise RedisProblem("InvalidRedisUrl", str(exc)) from exc


def _redis_failure(ctx: OperatorContext, exc: BaseException) -> RedisProblem:
    ctx.metrics.redis_errors.labels(KIND).inc()
    if isinstance(exc, RedisProblem):
        return exc
    return RedisProblem(REASON_REDIS_UNREACHABLE, str(exc) or "Redis did not answer in time")


def _now(ctx: OperatorContext) -> datetime:
    return datetime.fromtimestamp(ctx.clock(), UTC)


def _conditions(
    status: Mapping[str, Any], updates: list[Condition], now: datetime, generation: Any
) -> list[dict[str, Any]]:
    return merge_conditions(status.get("conditions"), updates, now=now, generation=generation)


def _ident(body: kopf.Body) -> tuple[str, str]:
    return body.metadata.namespace or "", body.metadata.name or ""


async def reconcile(
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    memo: kopf.Memo,
    patch: kopf.Patch,
    **_: Any,
) -> None:
    """Register the schedule in Redis and apply the namespace's scheduler."""
    ctx: OperatorContext = memo["ctx"]
    namespace, name = _ident(body)
    now = _now(ctx)
    generation = body.metadata.get("generation")
    patch.status["observedGeneration"] = generation
    patch.status["scheduleId"] = schedule_id(namespace, name)
    try:
        cron = parse_cronschedule(dict(spec))
    except SpecError as exc:
        _refuse(body, status, patch, REASON_INVALID_SPEC, str(exc), now, generation)
        return
    problem = check_spec(cron)
    async with object_lock(memo):
        if problem is not None:
            await _unregister_quietly(ctx, namespace, name, cron.redis)
            _refuse(body, status, patch, problem.reason, problem.message, now, generation)
            return
        try:
            async with asyncio.timeout(REDIS_TIMEOUT):
                client = await _client(ctx, namespace, cron.redis)
                await client.register_schedule(to_schedule(namespace, name, cron))
        except InvalidJobError as exc:  # the SDK's own check refused what check_spec let by
            _refuse(body, status, patch, REASON_INVALID_SCHEDULE, str(exc), now, generation)
            return
        except (RedisProblem, BananasError, TimeoutError) as exc:
            failure = _redis_failure(ctx, exc)
            _redis_down(body, status, patch, failure, now, generation)
            raise kopf.TemporaryError(failure.message, delay=ctx.config.retry_delay) from exc
        scheduler = await _apply_scheduler(ctx, body, cron)
    conditions = [*registered_conditions(cron), scheduler]
    patch.status["conditions"] = _conditions(status, conditions, now, generation)
    upcoming = next_fire(cron, now)
    patch.status["nextScheduleTime"] = format_time(upcoming) if upcoming else None
    state = "suspended" if cron.suspend else f"next fire {patch.status['nextScheduleTime']}"
    kopf.event(body, type="Normal", reason=REASON_REGISTERED, message=f"registered; {state}")


async def _apply_scheduler(
    ctx: OperatorContext, body: kopf.Body, cron: CronScheduleSpec
) -> Condition:
    owner = owner_of(body)
    namespace = owner["metadata"]["namespace"]
    objects = render_scheduler(namespace, cron.redis, owner, ctx.config.scheduler)
    try:
        for obj in objects:
            await ctx.kube.apply(obj, manager=field_manager(owner))
    except KubernetesApiError as exc:
        logger.warning("CronSchedule %s: scheduler not applied: %s", namespace, exc)
        kopf.event(body, type="Warning", reason=REASON_SCHEDULER_FAILED, message=exc.message)
        return Condition("SchedulerReady", FALSE, REASON_SCHEDULER_FAILED, exc.message)
    deployment = objects[2]["metadata"]["name"]
    return Condition("SchedulerReady", TRUE, "Applied", f"scheduler Deployment {deployment}")


def _refuse(
    body: kopf.Body,
    status: Mapping[str, Any],
    patch: kopf.Patch,
    reason: str,
    message: str,
    now: datetime,
    generation: Any,
) -> None:
    logger.warning("CronSchedule %s/%s: %s", *_ident(body), message)
    kopf.event(body, type="Warning", reason=reason, message=message)
    if reason != REASON_INVALID_SPEC:
        conditions = problem_conditions(Problem(reason, message))
    else:
        conditions = [Condition("Ready", FALSE, reason, message)]
    patch.status["conditions"] = _conditions(status, conditions, now, generation)
    patch.status["nextScheduleTime"] = None


def _redis_down(
    body: kopf.Body,
    status: Mapping[str, Any],
    patch: kopf.Patch,
    failure: RedisProblem,
    now: datetime,
    generation: Any,
) -> None:
    logger.warning("CronSchedule %s/%s: %s", *_ident(body), failure.message)
    kopf.event(body, type="Warning", reason=failure.reason, message=failure.message)
    conditions = [
        Condition("RedisReachable", FALSE, failure.reason, failure.message),
        Condition("Ready", FALSE, failure.reason, "the schedule could not be registered"),
    ]
    patch.status["conditions"] = _conditions(status, conditions, now, generation)


async def _unregister_quietly(
    ctx: OperatorContext, namespace: str, name: str, ref: RedisRef
) -> None:
    try:
        async with asyncio.timeout(REDIS_TIMEOUT):
            client = await _client(ctx, namespace, ref)
            await client.unregister_schedule(schedule_id(namespace, name))
    except (RedisProblem, BananasError, TimeoutError) as exc:
        logger.info("CronSchedule %s/%s: not unregistered: %s", namespace, name, exc)


async def _observe(
    ctx: OperatorContext, namespace: str, name: str, cron: CronScheduleSpec
) -> CronObservation:
    """Re-register the schedule and read what the scheduler did with it."""
    async with asyncio.timeout(REDIS_TIMEOUT):
        client = await _client(ctx, namespace, cron.redis)
        await client.register_schedule(to_schedule(namespace, name, cron))
        state = await client.schedule_status(schedule_id(namespace, name))
        job = result = None
        if state is not None and state.last_job_id:
            job = await client.get_job(state.last_job_id, cron.routing_key)
            if job is not None and job.status is JobStatus.COMPLETED:
                result = await client.get_result(state.last_job_id, cron.routing_key)
    return CronObservation(status=state, last_job=job, last_result=result)


async def sync(
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    memo: kopf.Memo,
    patch: kopf.Patch,
    **_: Any,
) -> None:
    """Copy the scheduler's view of the schedule into the status (kopf timer)."""
    ctx: OperatorContext = memo["ctx"]
    namespace, name = _ident(body)
    if memo.get("deleted") or body.metadata.deletion_timestamp:
        return
    try:
        cron = parse_cronschedule(dict(spec))
    except SpecError:
        return  # reconcile already reported it
    if check_spec(cron) is not None:
        return
    now = _now(ctx)
    async with object_lock(memo):
        if memo.get("deleted"):
            return
        try:
            seen = await _observe(ctx, namespace, name, cron)
        except InvalidJobError:
            return  # reconcile reported it
        except (RedisProblem, BananasError, TimeoutError) as exc:
            failure = _redis_failure(ctx, exc)
            if _condition_status(status, "RedisReachable") != FALSE:
                _redis_down(body, status, patch, failure, now, None)
            return
    fields, events = render_status(cron, seen, status, now)
    for event in events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
    patch.status["scheduleId"] = schedule_id(namespace, name)
    for key, value in fields.items():
        patch.status[key] = value
    conditions = registered_conditions(cron)
    patch.status["conditions"] = merge_conditions(status.get("conditions"), conditions, now=now)


def _condition_status(status: Mapping[str, Any], kind: str) -> str | None:
    for item in status.get("conditions") or []:
        if isinstance(item, Mapping) and item.get("type") == kind:
            value = item.get("status")
            return value if isinstance(value, str) else None
    return None


async def delete(
    body: kopf.Body,
    spec: kopf.Spec,
    memo: kopf.Memo,
    retry: int,
    **_: Any,
) -> None:
    """Unregister the schedule from Redis before the CronSchedule goes."""
    ctx: OperatorContext = memo["ctx"]
    namespace, name = _ident(body)
    memo["deleted"] = True
    redis = spec.get("redis")
    try:
        ref = RedisRef.model_validate(redis if isinstance(redis, Mapping) else {})
    except ValueError:
        ref = RedisRef.model_validate({})
    async with object_lock(memo):
        try:
            async with asyncio.timeout(REDIS_TIMEOUT):
                client = await _client(ctx, namespace, ref)
                await client.unregister_schedule(schedule_id(namespace, name))
        except (RedisProblem, BananasError, TimeoutError) as exc:
            failure = _redis_failure(ctx, exc)
            if retry < ctx.config.delete_retries:
                raise kopf.TemporaryError(failure.message, delay=ctx.config.retry_delay) from exc
            message = f"left in Redis after {retry + 1} attempts: {failure.message}"
            kopf.event(body, type="Warning", reason=REASON_UNREGISTER_FAILED, message=message)
            return
    kopf.event(body, type="Normal", reason=REASON_UNREGISTERED, message="removed from Redis")

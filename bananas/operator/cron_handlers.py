"""kopf handlers for CronSchedule: thin glue between kopf, the APIs and the pure functions.

- :func:`reconcile` (create, update, resume): check what only the operator can
  check (time zone, cron syntax), register the schedule in Redis, and apply the
  namespace's scheduler Deployment (:mod:`~bananas.operator.scheduler_deployment`).
- :func:`sync` (a kopf timer): copy what the scheduler did from Redis into the
  status, post an Event for every fire, skipped slot and fire error, and
  re-register the schedule (an idempotent write), so a Redis that lost its
  data gets its schedules back.
- :func:`delete` (behind the ``bananas.dev/finalizer`` finalizer): unregister
  the schedule, retrying for as long as it takes (a schedule left behind would
  keep firing); the status and a Warning Event say when it is stuck, and an
  annotation lets it go on purpose.

Redis being unreachable is a condition (``RedisReachable=False``) and an Event,
then a retry after ``retry_delay``; it never crashes the operator.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from random import Random
from typing import Any

import kopf

from bananas.client import AsyncClient
from bananas.errors import InvalidJobError
from bananas.models import JobStatus
from bananas.operator.conditions import (
    FALSE,
    TRUE,
    Condition,
    condition_status,
    find_condition,
    merge_conditions,
)
from bananas.operator.context import REDIS_TIMEOUT, OperatorContext, object_lock
from bananas.operator.cronschedule import (
    CronObservation,
    check_spec,
    next_fire,
    problem_conditions,
    registered_conditions,
    render_status,
    schedule_health,
    schedule_id,
    to_schedule,
)
from bananas.operator.handler_support import (
    REDIS_FAILURES,
    RedisProblem,
    ident,
    patch_changed,
    post_event,
    redis_client,
    redis_problem,
    refuse,
)
from bananas.operator.health import Problem, refusal_in
from bananas.operator.kube import KubernetesApiError
from bananas.operator.meta import JsonObject, owner_of
from bananas.operator.reasons import ConditionType, Reason
from bananas.operator.scheduler_deployment import (
    field_manager,
    render_scheduler,
    scheduler_name,
)
from bananas.operator.specs import CronScheduleSpec, RedisRef, SpecError, parse_cronschedule
from bananas.operator.timefmt import format_time

logger = logging.getLogger(__name__)

KIND = "CronSchedule"
#: Annotation that lets a CronSchedule be deleted although its schedule stays in Redis.
ABANDON_ANNOTATION = "bananas.dev/abandon-schedule"
#: Longest wait between two attempts at unregistering a deleted schedule (seconds).
MAX_DELETE_DELAY = 300.0


def _generation(body: kopf.Body) -> int | None:
    value = body.metadata.get("generation")
    return value if isinstance(value, int) else None


def _now(ctx: OperatorContext) -> datetime:
    return datetime.fromtimestamp(ctx.clock(), UTC)


def _conditions(
    status: Mapping[str, Any], updates: list[Condition], now: datetime, generation: Any
) -> list[dict[str, Any]]:
    return merge_conditions(status.get("conditions"), updates, now=now, generation=generation)


async def reconcile(
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    memo: kopf.Memo,
    patch: kopf.Patch,
    old: Any = None,
    reason: Any = None,
    **_: Any,
) -> None:
    """Register the schedule in Redis and apply the namespace's scheduler.

    After an edit of ``spec.redis``, also unregister it from the Redis it left (``old``
    is the body before the edit, on updates); until that works the handler is retried,
    so the old Redis's scheduler does not go on firing it.
    """
    ctx: OperatorContext = memo["ctx"]
    namespace, name = ident(body)
    now = _now(ctx)
    generation = _generation(body)
    ids = {"observedGeneration": generation, "scheduleId": schedule_id(namespace, name)}
    changed = patch_changed(patch, status, ids)
    try:
        cron = parse_cronschedule(dict(spec))
    except SpecError as exc:
        _refuse(body, status, patch, Reason.INVALID_SPEC, str(exc), now, generation)
        return
    if old is not None:  # an edit: re-read the Secret, whatever it names now
        ctx.forget_url(namespace, cron.redis)
    problem = check_spec(cron)
    async with object_lock(memo):
        if problem is not None:
            await _unregister_quietly(ctx, namespace, name, cron.redis)
            _refuse(body, status, patch, problem.reason, problem.message, now, generation)
            return
        try:
            async with _redis_round(ctx, namespace, cron.redis) as client:
                await client.register_schedule(to_schedule(namespace, name, cron))
        except InvalidJobError as exc:  # the SDK's own check refused what check_spec let by
            _refuse(body, status, patch, Reason.INVALID_SCHEDULE, str(exc), now, generation)
            return
        except REDIS_FAILURES as exc:
            failure = redis_problem(ctx, KIND, exc)
            _redis_down(body, status, patch, failure, now, generation)
            raise kopf.TemporaryError(failure.message, delay=ctx.config.retry_delay) from exc
        await _leave_old_redis(ctx, body, old, cron.redis)
        applied, deployment = await _apply_scheduler(ctx, body, cron)
    failed = None
    if applied.status != TRUE:
        failed = Problem(Reason.SCHEDULER_NOT_APPLIED, applied.message)
    health = schedule_health(cron, scheduler_failed=failed, scheduler=deployment)
    conditions = [*registered_conditions(cron), applied, *health]
    upcoming = next_fire(cron, now)
    fields = {
        "conditions": _conditions(status, conditions, now, generation),
        "nextScheduleTime": format_time(upcoming) if upcoming else None,
    }
    changed = patch_changed(patch, status, fields) or changed
    state = "suspended" if cron.suspend else f"next fire {fields['nextScheduleTime']}"
    if _was_suspended(old) and not cron.suspend:  # one Event per resume
        post_event(body, "Normal", Reason.RESUMED, f"resumed; {state}")
    elif changed or reason != kopf.Reason.RESUME:  # an operator restart is no news
        post_event(body, "Normal", Reason.REGISTERED, f"registered; {state}")


def _was_suspended(old: Any) -> bool:
    spec = old.get("spec") if isinstance(old, Mapping) else None
    return isinstance(spec, Mapping) and spec.get("suspend") is True


def _previous_redis(old: Any) -> RedisRef | None:
    spec = old.get("spec") if isinstance(old, Mapping) else None
    redis = spec.get("redis") if isinstance(spec, Mapping) else None
    try:
        return RedisRef.model_validate(redis if isinstance(redis, Mapping) else {})
    except ValueError:
        return None


async def _leave_old_redis(
    ctx: OperatorContext, body: kopf.Body, old: Any, current: RedisRef
) -> None:
    """Unregister from the Redis an edit moved the schedule away from, if it did."""
    previous = _previous_redis(old) if old is not None else None
    if previous is None or previous == current:
        return
    namespace, name = ident(body)
    try:
        async with _redis_round(ctx, namespace, previous) as client:
            await client.unregister_schedule(schedule_id(namespace, name))
    except REDIS_FAILURES as exc:
        failure = redis_problem(ctx, KIND, exc)
        message = f"still registered in the Redis of Secret {previous.secret_name}: {failure}"
        post_event(body, "Warning", Reason.UNREGISTER_FAILED, message)
        raise kopf.TemporaryError(message, delay=ctx.config.retry_delay) from exc
    post_event(
        body,
        "Normal",
        Reason.UNREGISTERED,
        f"removed from the Redis of Secret {previous.secret_name}",
    )


async def _apply_scheduler(
    ctx: OperatorContext, body: kopf.Body, cron: CronScheduleSpec
) -> tuple[Condition, JsonObject | None]:
    """Apply the scheduler's objects: the SchedulerReady condition and the stored Deployment."""
    owner = owner_of(body)
    namespace = owner["metadata"]["namespace"]
    objects = render_scheduler(namespace, cron.redis, owner, ctx.config.scheduler)
    try:
        stored = await ctx.apply_group(objects, manager=field_manager(owner))
    except KubernetesApiError as exc:
        logger.warning("CronSchedule %s: scheduler not applied: %s", namespace, exc)
        post_event(body, "Warning", Reason.SCHEDULER_NOT_APPLIED, exc.message)
        failed = Condition(
            ConditionType.SCHEDULER_READY, FALSE, Reason.SCHEDULER_NOT_APPLIED, exc.message
        )
        return failed, None
    deployment = objects[-1]["metadata"]["name"]
    condition = Condition(
        ConditionType.SCHEDULER_READY, TRUE, Reason.APPLIED, f"scheduler Deployment {deployment}"
    )
    return condition, stored


def _refuse(
    body: kopf.Body,
    status: Mapping[str, Any],
    patch: kopf.Patch,
    reason: Reason,
    message: str,
    now: datetime,
    generation: int | None,
) -> None:
    problem = Problem(reason, message)
    conditions = schedule_health(None, refusal=problem)
    if reason != Reason.INVALID_SPEC:
        conditions = [*problem_conditions(problem), *conditions]
    refuse(
        body,
        status,
        patch,
        reason=reason,
        message=message,
        conditions=conditions,
        now=now,
        generation=generation,
    )
    patch.status["nextScheduleTime"] = None


def _redis_down(
    body: kopf.Body,
    status: Mapping[str, Any],
    patch: kopf.Patch,
    failure: RedisProblem,
    now: datetime,
    generation: int | None,
) -> None:
    unregistered = Problem(failure.reason, f"the schedule could not be registered: {failure}")
    conditions = [
        Condition(ConditionType.REDIS_REACHABLE, FALSE, failure.reason, failure.message),
        *schedule_health(None, redis=unregistered),
    ]
    refuse(
        body,
        status,
        patch,
        reason=failure.reason,
        message=failure.message,
        conditions=conditions,
        now=now,
        generation=generation,
    )


@asynccontextmanager
async def _redis_round(
    ctx: OperatorContext, namespace: str, ref: RedisRef
) -> AsyncIterator[AsyncClient]:
    """One Redis round of a CronSchedule handler: its turn of ``ctx.cron_slots`` (bounded
    like the autoscaler's polls, apart from them: a new leader registers 1,000 schedules
    at once), then at most :data:`REDIS_TIMEOUT` from that turn on."""
    async with (
        ctx.cron_slots(),
        asyncio.timeout(REDIS_TIMEOUT),
        redis_client(ctx, namespace, ref) as client,
    ):
        yield client


async def _unregister_quietly(
    ctx: OperatorContext, namespace: str, name: str, ref: RedisRef
) -> None:
    try:
        async with _redis_round(ctx, namespace, ref) as client:
            await client.unregister_schedule(schedule_id(namespace, name))
    except REDIS_FAILURES as exc:
        logger.info("CronSchedule %s/%s: not unregistered: %s", namespace, name, exc)


async def _observe(
    ctx: OperatorContext, namespace: str, name: str, cron: CronScheduleSpec
) -> CronObservation:
    """Re-register the schedule and read what the scheduler did with it."""
    async with _redis_round(ctx, namespace, cron.redis) as client:
        await client.register_schedule(to_schedule(namespace, name, cron))
        state = await client.schedule_status(schedule_id(namespace, name))
        job = result = None
        if state is not None and state.last_job_id:
            job = await client.get_job(state.last_job_id, cron.routing_key)
            if job is not None and job.status is JobStatus.COMPLETED:
                result = await client.get_result(state.last_job_id, cron.routing_key)
    return CronObservation(status=state, last_job=job, last_result=result)


def first_sync_delay(interval: float, rng: Random) -> Callable[..., float]:
    """kopf's ``initial_delay`` of the sync timer: one to two intervals after the resume.

    The resume (or creation) has just registered the schedule and written its status,
    so a sync at once would read back what was written. Starting the timers at once
    also put 1,000 Redis rounds into a new leader's first seconds, beside the 2,000
    resumes it must get through before every pool's autoscaler runs; the random part
    keeps the syncs spread over their interval afterwards."""

    def delay(**_: Any) -> float:
        return interval * (1.0 + rng.random())

    return delay


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
    namespace, name = ident(body)
    if memo.get("deleted") or body.metadata.deletion_timestamp:
        return
    try:
        cron = parse_cronschedule(dict(spec))
    except SpecError:
        return  # reconcile already reported it
    generation = _generation(body)
    if check_spec(cron) is not None or refusal_in(status, generation) is not None:
        return  # reconcile reported it, for this generation
    now = _now(ctx)
    async with object_lock(memo):
        if memo.get("deleted"):
            return
        try:
            seen = await _observe(ctx, namespace, name, cron)
            scheduler = await ctx.deployment(namespace, scheduler_name(cron.redis))
        except InvalidJobError:
            return  # reconcile reported it
        except REDIS_FAILURES as exc:
            failure = redis_problem(ctx, KIND, exc)
            if condition_status(status.get("conditions"), ConditionType.REDIS_REACHABLE) != FALSE:
                _redis_down(body, status, patch, failure, now, generation)
            return
        except KubernetesApiError as exc:
            logger.warning("CronSchedule %s/%s: scheduler not read: %s", namespace, name, exc)
            return
    fields, events = render_status(cron, seen, status, now)
    for event in events:
        post_event(body, event.type, event.reason, event.message)
    fields["scheduleId"] = schedule_id(namespace, name)
    fields["conditions"] = _synced_conditions(cron, status, scheduler, now, generation)
    patch_changed(patch, status, fields)  # a quiet schedule costs no write per sync


def _synced_conditions(
    cron: CronScheduleSpec,
    status: Mapping[str, Any],
    scheduler: JsonObject | None,
    now: datetime,
    generation: int | None,
) -> list[dict[str, Any]]:
    applied = find_condition(status.get("conditions"), ConditionType.SCHEDULER_READY)
    failed = None
    if applied is not None and applied.get("status") == FALSE:
        failed = Problem(Reason.SCHEDULER_NOT_APPLIED, str(applied.get("message") or ""))
    conditions = [
        *registered_conditions(cron),
        *schedule_health(cron, scheduler_failed=failed, scheduler=scheduler),
    ]
    return merge_conditions(status.get("conditions"), conditions, now=now, generation=generation)


async def delete(
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    memo: kopf.Memo,
    patch: kopf.Patch,
    retry: int,
    **_: Any,
) -> None:
    """Unregister the schedule from Redis before the CronSchedule goes.

    Retried for as long as it takes (a schedule left in Redis would go on firing),
    with a growing delay; from the ``delete_retries``-th failure on, the status says
    so (``Registered=True/UnregisterFailed``) and a Warning Event is posted once. The
    annotation ``bananas.dev/abandon-schedule: "true"`` lets the object go regardless.
    """
    ctx: OperatorContext = memo["ctx"]
    namespace, name = ident(body)
    memo["deleted"] = True
    if (body.metadata.annotations or {}).get(ABANDON_ANNOTATION) == "true":
        message = f"left in Redis: the {ABANDON_ANNOTATION} annotation says to let it go"
        post_event(body, "Warning", Reason.UNREGISTER_FAILED, message)
        return
    ref = _previous_redis(body) or RedisRef.model_validate({})
    async with object_lock(memo):
        try:
            async with _redis_round(ctx, namespace, ref) as client:
                await client.unregister_schedule(schedule_id(namespace, name))
        except REDIS_FAILURES as exc:
            failure = redis_problem(ctx, KIND, exc)
            if retry + 1 >= ctx.config.delete_retries:
                _still_registered(body, status, patch, failure, retry, ctx.clock())
            delay = min(ctx.config.retry_delay * 2 ** max(0, retry), MAX_DELETE_DELAY)
            raise kopf.TemporaryError(failure.message, delay=delay) from exc
    post_event(body, "Normal", Reason.UNREGISTERED, "removed from Redis")


def _still_registered(
    body: kopf.Body,
    status: Mapping[str, Any],
    patch: kopf.Patch,
    failure: RedisProblem,
    retry: int,
    now: float,
) -> None:
    message = (
        f"deletion waits until the schedule leaves Redis ({retry + 1} attempts so far):"
        f" {failure.message}; annotate {ABANDON_ANNOTATION}=true to let it go"
    )
    condition = Condition(ConditionType.REGISTERED, TRUE, Reason.UNREGISTER_FAILED, message)
    if (
        condition_status(status.get("conditions"), ConditionType.REGISTERED) == TRUE
        and (find_condition(status.get("conditions"), ConditionType.REGISTERED) or {}).get("reason")
        == Reason.UNREGISTER_FAILED
    ):
        return  # said already
    post_event(body, "Warning", Reason.UNREGISTER_FAILED, message)
    patch.status["conditions"] = merge_conditions(
        status.get("conditions"), [condition], now=datetime.fromtimestamp(now, UTC)
    )

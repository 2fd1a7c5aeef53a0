"""kopf handlers for WorkerPool: thin glue between kopf, the APIs and the pure functions.

Two entry points:

- :func:`reconcile` (on create, update and resume) renders the Deployment and
  PodDisruptionBudget from the spec (:mod:`~bananas.operator.workerpool`) and
  server-side applies them. It keeps the Deployment's current size: sizing is
  the autoscaler's business.
- :func:`autoscale` is a kopf daemon, one per WorkerPool, that wakes every
  ``spec.autoscaling.pollInterval`` seconds. It acts as a timer whose interval
  is the pool's own: kopf's ``@timer`` takes one interval fixed at registration,
  so a per-resource interval takes the daemon form. Each poll reads the queue
  statistics from Redis, asks :func:`~bananas.operator.autoscaler.decide` for a
  size, applies it, posts an Event for every change of size, and writes the
  status, including the autoscaler's memory, so a restarted operator resumes
  with the same stabilisation history and cooldown clock.

Both run under the pool's lock (:func:`~bananas.operator.context.object_lock`),
so a spec edit and a poll never write the Deployment at the same time. Nothing
here raises for a condition a user can cause: an unusable spec, a missing
Secret, an unreachable Redis each become a condition and an Event, and the
operator carries on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from random import Random
from typing import Any

import kopf

from bananas.operator.autoscaler import (
    Decision,
    Load,
    Memory,
    Policy,
    decide,
    fallback_size,
    is_paused,
    pool_load,
)
from bananas.operator.conditions import FALSE, TRUE, condition_status, merge_conditions
from bananas.operator.context import REDIS_TIMEOUT, OperatorContext, object_lock
from bananas.operator.handler_support import (
    REDIS_FAILURES,
    ident,
    patch_changed,
    post_event,
    redis_client,
    redis_problem,
    refuse,
)
from bananas.operator.health import (
    Problem,
    Rollout,
    deployment_health,
    pod_problem,
    refusal_in,
)
from bananas.operator.kube import KubernetesApiError
from bananas.operator.meta import WORKERPOOL_PLURAL, JsonObject, owner_of
from bananas.operator.pool_status import (
    Observation,
    observed_fields,
    pool_conditions,
    status_changed,
)
from bananas.operator.reasons import ConditionType, Reason
from bananas.operator.scaledown import (
    DELETION_COST,
    Hold,
    busy_pods,
    cost_patches,
    hold,
    pod_work,
)
from bananas.operator.scheduler_deployment import scheduler_name
from bananas.operator.specs import SpecError, WorkerPoolSpec, parse_workerpool
from bananas.operator.timefmt import format_epoch
from bananas.operator.workerpool import (
    grace_period,
    initial_replicas,
    pool_selector,
    render_deployment,
    render_pdb,
)

logger = logging.getLogger(__name__)

KIND = "WorkerPool"
#: Seconds between polls of a pool whose spec cannot be read.
FALLBACK_POLL = 15.0
#: A poll interval varies by up to this fraction either way.
POLL_JITTER = 0.1
#: Longest random wait before a pool's first poll (seconds); see :func:`first_delay`.
FIRST_POLL_SPREAD = 5.0


def _replicas_of(deployment: Mapping[str, Any] | None) -> int | None:
    spec = deployment.get("spec") if deployment else None
    value = spec.get("replicas") if isinstance(spec, Mapping) else None
    return value if isinstance(value, int) else None


async def cron_elsewhere(ctx: OperatorContext, namespace: str, spec: WorkerPoolSpec) -> bool:
    """Whether the namespace runs a scheduler Deployment for the pool's Redis.

    One cron loop per Redis: that scheduler fires the schedules, and the pool's workers
    run theirs (``ENABLE_SCHEDULER``) only when there is none.
    """
    return await ctx.deployment(namespace, scheduler_name(spec.redis)) is not None


async def apply_pool(
    ctx: OperatorContext,
    body: Mapping[str, Any],
    spec: WorkerPoolSpec,
    replicas: int | None,
    memo: kopf.Memo,
) -> JsonObject:
    """Apply the pool's Deployment (at ``replicas``, else its current size) and its PDB.

    Returns the Deployment as stored. Raises :class:`KubernetesApiError`. Remembers in
    ``memo`` whether the pods were rendered with a scheduler elsewhere, so a poll notices
    a scheduler that came or went since (:func:`_scheduler_moved`).
    """
    owner = owner_of(body)
    meta = owner["metadata"]
    if replicas is None:
        current = _replicas_of(await ctx.deployment(meta["namespace"], meta["name"]))
        status = body.get("status")
        if current is None:
            replicas = initial_replicas(spec, status)
        else:
            replicas = Policy.from_spec(spec.autoscaling).clamp(current)
    elsewhere = await cron_elsewhere(ctx, meta["namespace"], spec)
    rendered = render_deployment(owner, spec, replicas, cron_elsewhere=elsewhere)
    applied = await ctx.apply_group([render_pdb(owner, spec), rendered])
    memo["cron_elsewhere"] = elsewhere
    return applied


async def _scheduler_moved(
    ctx: OperatorContext, memo: kopf.Memo, namespace: str, spec: WorkerPoolSpec
) -> bool:
    """True when a scheduler for the pool's Redis came or went since the pool was applied.

    A pool applied before its namespace's first CronSchedule runs its workers' cron
    loop beside the scheduler's until it is applied again; left for the next edit, that
    was the next failover, which then re-applied (and rolled) every such pool at once.
    """
    rendered = memo.get("cron_elsewhere")
    return rendered is not None and rendered != await cron_elsewhere(ctx, namespace, spec)


async def reconcile(
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    memo: kopf.Memo,
    patch: kopf.Patch,
    old: Any = None,
    **_: Any,
) -> None:
    """Create or update the pool's Deployment and PodDisruptionBudget."""
    ctx: OperatorContext = memo["ctx"]
    now = ctx.clock()
    generation = _generation(body)
    try:
        pool = parse_workerpool(dict(spec))
    except SpecError as exc:
        _refuse(body, status, memo, patch, Problem(Reason.INVALID_SPEC, str(exc)), now)
        return
    if old is not None:  # an edit: re-read the Secret, whatever it names now
        ctx.forget_url(ident(body)[0], pool.redis)
    async with object_lock(memo):
        try:
            deployment = await apply_pool(ctx, body, pool, None, memo)
        except KubernetesApiError as exc:
            if not exc.invalid:
                ctx.metrics.reconcile_errors.labels(KIND).inc()
                raise kopf.TemporaryError(str(exc), delay=ctx.config.retry_delay) from exc
            problem = Problem(Reason.INVALID_POD_TEMPLATE, exc.message)
            _refuse(body, status, memo, patch, problem, now)
            return
        memo["refusal"] = (generation, None)
    conditions = merge_conditions(
        memo.get("conditions") or status.get("conditions"),
        deployment_health(deployment, generation),
        now=_datetime(now),
        generation=generation,
    )
    patch_changed(patch, status, {"observedGeneration": generation, "conditions": conditions})


def _refuse(
    body: kopf.Body,
    status: kopf.Status,
    memo: kopf.Memo,
    patch: kopf.Patch,
    problem: Problem,
    now: float,
) -> None:
    generation = _generation(body)
    memo["refusal"] = (generation, problem)
    refuse(
        body,
        status,
        patch,
        reason=problem.reason,
        message=problem.message,
        conditions=deployment_health(None, generation, refusal=problem),
        now=_datetime(now),
        generation=generation,
    )


def _refusal(memo: kopf.Memo, body: kopf.Body) -> Problem | None:
    """The refusal of the pool's current generation: from memory, else from its status."""
    generation = _generation(body)
    remembered = memo.get("refusal")
    if isinstance(remembered, tuple) and remembered[0] == generation:
        problem: Problem | None = remembered[1]
        return problem
    return refusal_in(body.status, generation)


def _generation(body: kopf.Body) -> int | None:
    value = body.metadata.get("generation")
    return value if isinstance(value, int) else None


def _datetime(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)


async def read_load(
    ctx: OperatorContext, namespace: str, spec: WorkerPoolSpec
) -> tuple[Load | None, tuple[str, str] | None]:
    """The pool's load from Redis, or None and (reason, message) saying why not."""
    try:
        async with redis_client(ctx, namespace, spec.redis) as client:
            async with asyncio.timeout(REDIS_TIMEOUT):
                window = float(spec.autoscaling.poll_interval)
                stats = [
                    await client.queue_stats(key, due_within=window) for key in spec.routing_keys
                ]
    except REDIS_FAILURES as exc:
        problem = redis_problem(ctx, KIND, exc)
        return None, (problem.reason, problem.message)
    return pool_load(stats, spec.priorities), None


def _memory(memo: kopf.Memo, status: Any, now: float) -> Memory:
    remembered = memo.get("autoscaler")
    if isinstance(remembered, Memory):
        return remembered
    saved = status.get("autoscaler") if isinstance(status, Mapping) else None
    return Memory.from_status(saved, now=now)


async def poll(ctx: OperatorContext, body: kopf.Body, memo: kopf.Memo) -> float:
    """One autoscaler round for a pool; returns the seconds until the next one."""
    now = ctx.clock()
    namespace, name = ident(body)
    try:
        return await _poll(ctx, body, memo, now)
    finally:
        ctx.metrics.polls.labels(namespace, name).inc()


async def _poll(ctx: OperatorContext, body: kopf.Body, memo: kopf.Memo, now: float) -> float:
    generation = _generation(body)
    try:
        spec = parse_workerpool(dict(body.spec))
    except SpecError as exc:
        seen = Observation(deployment=None, load=None, spec_problem=str(exc), generation=generation)
        await _write_status(ctx, body, memo, seen, desired=0, decision=None, now=now)
        return FALLBACK_POLL
    async with object_lock(memo):
        seen, desired, decision = await _observe_and_scale(ctx, body, memo, spec, now)
        await _write_status(ctx, body, memo, seen, desired=desired, decision=decision, now=now)
    return float(spec.autoscaling.poll_interval)


async def _observe_and_scale(
    ctx: OperatorContext, body: kopf.Body, memo: kopf.Memo, spec: WorkerPoolSpec, now: float
) -> tuple[Observation, int, Decision | None]:
    namespace, name = ident(body)
    generation = _generation(body)
    refusal = _refusal(memo, body)
    deployment = await ctx.deployment(namespace, name)
    if refusal is None and (
        deployment is None or await _scheduler_moved(ctx, memo, namespace, spec)
    ):
        # Deleted by hand or never made: heal it; a scheduler came or went: render anew.
        deployment, refusal = await _apply_or_refuse(ctx, body, memo, spec, None)
    load, problem = await read_load(ctx, namespace, spec)
    memo["redis_failures"] = 0 if load is not None else int(memo.get("redis_failures") or 0) + 1
    current = _replicas_of(deployment) or 0
    decision: Decision | None = None
    desired, held = current, 0
    paused = _paused(body)
    if load is not None:
        decision = decide(
            Policy.from_spec(spec.autoscaling), current, load, now, _memory(memo, body.status, now)
        )
        memo["autoscaler"] = decision.memory
        if refusal is None and not paused:
            resized = await _resize(ctx, body, memo, spec, decision, current, now, load)
            deployment = resized.deployment or deployment
            desired, held, refusal = resized.size, resized.held, resized.refusal
    elif refusal is None and not paused:
        resized = await _fall_back(ctx, body, memo, spec, current)
        deployment = resized.deployment or deployment
        desired, refusal = resized.size, resized.refusal
    pods = None
    if deployment is not None and refusal is None:
        if desired == current and Rollout.of(deployment).replaced_pods:
            await _rank_pods(ctx, namespace, name, spec)  # a rollout: idle old pods go first
        pods = await _stuck_pod(ctx, namespace, name, deployment, generation)
    seen = Observation(
        deployment=deployment,
        load=load,
        redis_problem=problem,
        generation=generation,
        refusal=refusal,
        pods=pods,
        held_for_busy=held,
        paused=paused,
        fallback=load is None and _falling_back(memo, spec),
    )
    return seen, desired, decision


def _paused(body: kopf.Body) -> bool:
    return is_paused(body.metadata.annotations or {})


def _falling_back(memo: kopf.Memo, spec: WorkerPoolSpec) -> bool:
    failures = int(memo.get("redis_failures") or 0)
    return fallback_size(spec.autoscaling.fallback, failures) is not None


async def _fall_back(
    ctx: OperatorContext, body: kopf.Body, memo: kopf.Memo, spec: WorkerPoolSpec, current: int
) -> _Resized:
    """Redis unreadable for ``fallback.failureThreshold`` polls: go to ``fallback.replicas``."""
    fallback = spec.autoscaling.fallback
    if fallback is None or not _falling_back(memo, spec):
        return _Resized(None, current)
    target = Policy.from_spec(spec.autoscaling).clamp(fallback.replicas)
    if target == current:
        return _Resized(None, current)
    scaled, refusal = await _apply_or_refuse(ctx, body, memo, spec, target)
    if scaled is None:
        return _Resized(None, current, 0, refusal)
    failures = memo.get("redis_failures")
    message = f"{current} -> {target} replicas: Redis unreadable for {failures} polls (fallback)"
    post_event(body, "Warning", Reason.FALLBACK, message)
    ctx.metrics.scale_decisions.labels(*ident(body), Reason.FALLBACK).inc()
    return _Resized(scaled, target)


@dataclass(frozen=True)
class _Resized:
    #: The Deployment as stored after the change, None when nothing was applied.
    deployment: JsonObject | None
    #: The size the pool has now.
    size: int
    #: Busy pods the pool was kept above the autoscaler's size for.
    held: int = 0
    refusal: Problem | None = None


async def _resize(
    ctx: OperatorContext,
    body: kopf.Body,
    memo: kopf.Memo,
    spec: WorkerPoolSpec,
    decision: Decision,
    current: int,
    now: float,
    load: Load,
) -> _Resized:
    """Apply the autoscaler's size, sparing busy pods when it shrinks the pool."""
    target, held = decision.desired, 0
    if target < current:
        kept = await _spare_busy(ctx, body, memo, spec, decision.desired, current, now, load)
        target, held = kept.size, kept.busy
    else:
        memo["held_since"] = None
    if target == current:
        return _Resized(None, current, held)
    scaled, refusal = await _apply_or_refuse(ctx, body, memo, spec, target)
    if scaled is None:
        return _Resized(None, current, 0, refusal)
    _announce_scale(ctx, body, _as_applied(decision, current, target, held))
    return _Resized(scaled, target, held)


def _as_applied(decision: Decision, current: int, target: int, held: int) -> Decision:
    """The decision as applied: the autoscaler's, or a smaller shrink that spares busy pods."""
    if target == decision.desired:
        return decision
    reason = Reason.SCALED_DOWN if target < current else Reason.SCALED_UP
    message = f"{decision.message}; keeping {target} pods: {held} are running jobs"
    return replace(decision, desired=target, reason=reason, message=message)


async def _rank_pods(
    ctx: OperatorContext, namespace: str, name: str, spec: WorkerPoolSpec
) -> dict[str, int] | None:
    """Set each pod's deletion cost to its in-flight jobs; return the work per pod.

    None when the heartbeats could not be read (nothing is patched then).
    """
    pods = await ctx.kube.list_pods(namespace, pool_selector(name))
    try:
        async with redis_client(ctx, namespace, spec.redis) as client:
            async with asyncio.timeout(REDIS_TIMEOUT):
                workers = await client.workers()
    except REDIS_FAILURES as exc:
        logger.warning("WorkerPool %s/%s: heartbeats not read: %s", namespace, name, exc)
        return None
    work = pod_work(pods, workers)
    for pod, cost in cost_patches(pods, work).items():
        try:
            await ctx.kube.annotate_pod(namespace, pod, {DELETION_COST: cost})
        except KubernetesApiError as exc:
            if not exc.not_found:  # a pod that just went needs no cost
                raise
    return work


async def _spare_busy(
    ctx: OperatorContext,
    body: kopf.Body,
    memo: kopf.Memo,
    spec: WorkerPoolSpec,
    desired: int,
    current: int,
    now: float,
    load: Load,
) -> Hold:
    """Before shrinking: idle pods first (deletion cost), and never below the busy pods.

    A heartbeat is up to a third of the lease old, so a pod that took a job since
    may still report itself idle. The leases in Redis are exact: while the pool's
    heartbeats account for fewer in-flight jobs than its routing keys hold, the
    shrink waits (within the same bound) rather than guess which pod is busy.
    """
    namespace, name = ident(body)
    work = await _rank_pods(ctx, namespace, name, spec)
    if work is None:  # which pods are busy is unknown: shrink at the next poll
        return Hold(size=current, busy=0, since=memo.get("held_since"))
    busy = busy_pods(work)
    if sum(work.values()) < load.in_flight:
        busy = current  # a job's pod is not known yet: keep them all for now
    kept = hold(
        desired,
        current,
        busy,
        now=now,
        since=memo.get("held_since"),
        limit=float(grace_period(spec)),
    )
    memo["held_since"] = kept.since
    return kept


async def _stuck_pod(
    ctx: OperatorContext,
    namespace: str,
    name: str,
    deployment: JsonObject,
    generation: int | None,
) -> Problem | None:
    """The first stuck pod, looked for only while the Deployment is not fully available."""
    if Rollout.of(deployment).pending(generation) is None:
        return None
    return pod_problem(await ctx.kube.list_pods(namespace, pool_selector(name)))


async def _apply_or_refuse(
    ctx: OperatorContext,
    body: kopf.Body,
    memo: kopf.Memo,
    spec: WorkerPoolSpec,
    replicas: int | None,
) -> tuple[JsonObject | None, Problem | None]:
    """Apply the pool; a pod template the API refuses becomes this generation's refusal."""
    try:
        return await apply_pool(ctx, body, spec, replicas, memo), None
    except KubernetesApiError as exc:
        if not exc.invalid:
            raise
        problem = Problem(Reason.INVALID_POD_TEMPLATE, exc.message)
        if memo.get("refusal") != (_generation(body), problem):
            post_event(body, "Warning", problem.reason, problem.message)
        memo["refusal"] = (_generation(body), problem)
        return None, problem


def _announce_scale(ctx: OperatorContext, body: kopf.Body, decision: Decision) -> None:
    assert decision.reason is not None
    namespace, name = ident(body)
    logger.info("WorkerPool %s/%s: %s", namespace, name, decision.message)
    post_event(body, "Normal", decision.reason, decision.message)
    ctx.metrics.scale_decisions.labels(namespace, name, decision.reason).inc()


async def _write_status(
    ctx: OperatorContext,
    body: kopf.Body,
    memo: kopf.Memo,
    seen: Observation,
    *,
    desired: int,
    decision: Decision | None,
    now: float,
) -> None:
    previous = memo.get("conditions")
    if previous is None:
        previous = body.status.get("conditions")
    conditions = merge_conditions(
        previous,
        pool_conditions(seen, desired, decision),
        now=_datetime(now),
        generation=seen.generation,
    )
    _announce_redis(body, previous, conditions)
    memo["conditions"] = conditions
    status: JsonObject = {
        **observed_fields(seen),
        "desiredReplicas": desired,
        "conditions": conditions,
    }
    if decision is not None:
        status["autoscaler"] = decision.memory.to_status()
        if decision.reason is not None:
            status["lastScaleTime"] = format_epoch(now)
        ctx.metrics.desired_replicas.labels(body.metadata.namespace, body.metadata.name).set(
            desired
        )
        ctx.metrics.pool_load.labels(body.metadata.namespace, body.metadata.name).set(decision.load)
    # Compared with the status as stored (kopf keeps the body current from the watch), so
    # a hand edit is still put right, and an unchanged status costs no write.
    if not status_changed(body.status, status):
        return  # nothing but the clock moved: no write, no watch event echoed back
    try:
        await ctx.kube.patch_status(
            WORKERPOOL_PLURAL, body.metadata.namespace or "", body.metadata.name or "", status
        )
    except KubernetesApiError as exc:
        if not exc.not_found:  # a pool deleted under our feet needs no status
            logger.warning(
                "WorkerPool %s/%s: status not written: %s",
                body.metadata.namespace,
                body.metadata.name,
                exc,
            )


def _announce_redis(body: kopf.Body, before: Any, after: list[JsonObject]) -> None:
    """Post an Event when the RedisReachable condition flips."""
    kind = ConditionType.REDIS_REACHABLE
    old, new = condition_status(before, kind), condition_status(after, kind)
    if old == new or new is None:
        return
    entry = next(c for c in after if c["type"] == kind)
    if new == FALSE:
        post_event(body, "Warning", entry["reason"], entry["message"])
    elif new == TRUE and old == FALSE:
        post_event(body, "Normal", Reason.REDIS_REACHABLE, "queue statistics readable again")


def first_delay(rng: Random, spec: Mapping[str, Any]) -> float:
    """A random wait before a pool's first poll, within :data:`FIRST_POLL_SPREAD` (or the
    poll interval, if shorter): an operator that starts with 1,000 pools spreads their
    polls instead of running them in step, and the jitter of each later sleep spreads
    them further. Not over the whole interval: a new leader's first polls are how it
    takes over scaling, and a pool that waited most of its interval was that late."""
    autoscaling = spec.get("autoscaling")
    interval = autoscaling.get("pollInterval") if isinstance(autoscaling, Mapping) else None
    seconds = float(interval) if isinstance(interval, int) and interval > 0 else FALLBACK_POLL
    return rng.uniform(0.0, min(seconds, FIRST_POLL_SPREAD))


def jittered(rng: Random, interval: float) -> float:
    """``interval`` give or take :data:`POLL_JITTER`, so pools drift apart, not together."""
    return interval * rng.uniform(1.0 - POLL_JITTER, 1.0 + POLL_JITTER)


async def autoscale(
    body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    """The pool's autoscaler loop: poll, then sleep about ``pollInterval`` (kopf daemon).

    At most ``max_concurrent_polls`` pools poll at once (the others wait their turn),
    and each waits a random part of its interval before its first poll.
    """
    ctx: OperatorContext = memo["ctx"]
    try:
        await stopped.wait(first_delay(ctx.random, dict(body.spec)))
        while not stopped:
            try:
                async with ctx.poll_slots():
                    interval = await poll(ctx, body, memo)
            except KubernetesApiError as exc:
                ctx.metrics.reconcile_errors.labels(KIND).inc()
                logger.warning(
                    "WorkerPool %s/%s: poll failed: %s",
                    body.metadata.namespace,
                    body.metadata.name,
                    exc,
                )
                interval = ctx.config.retry_delay
            await stopped.wait(jittered(ctx.random, interval))
    finally:
        ctx.metrics.forget_pool(body.metadata.namespace or "", body.metadata.name or "")

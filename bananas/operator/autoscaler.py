"""The queue-depth autoscaler: a pure function from (policy, load, memory, now) to a size.

How a WorkerPool is sized, on every poll:

1. **Load** is the ready jobs of the pool's routing keys, counting only the
   priorities the pool serves, plus the jobs in flight on those routing keys,
   plus the delayed jobs and retries due within one poll (so a pool at zero,
   which has no worker to promote them, wakes for them). Ready jobs of a
   priority paused on its routing key (``Client.pause``) are left out: no
   worker fetches them, so pods added for them would sit idle. Jobs in flight
   on a paused key still count (they are running, and their pods must not be
   taken away), and so do due jobs unless every priority the pool serves on
   that key is paused. The held-back jobs are reported beside the load
   (:attr:`Load.paused`), for the WorkerPool status.
2. **Recommendation**: ``ceil(load / targetJobsPerReplica)``, clamped to
   ``[minReplicas, maxReplicas]``. A pool at zero stays at zero until the load
   reaches ``activationJobs``. A pool may only be recommended zero once nothing
   has been queued or running for ``cooldownSeconds`` (until then it keeps one
   pod); an idle spell shorter than the cooldown never tears the pool down.
3. **Stabilisation**, as the HorizontalPodAutoscaler does it: the pool scales up
   to the *lowest* recommendation seen within the scale-up window and down to the
   *highest* seen within the scale-down window, so a burst or a lull shorter
   than the window does not make it flap. Two steps bypass the windows because
   they have their own rule: waking from zero (the activation threshold) goes to
   at least one pod at once, and going to zero (the cooldown) happens as soon as
   the cooldown has passed.
4. **Rate policies** (the HPA's ``behavior.*.policies``): each allows at most
   ``value`` pods, or ``value`` percent of the pods the pool had at the start
   of the period, to be added (scale-up) or removed (scale-down) within
   ``periodSeconds``; ``selectPolicy`` picks the policy allowing the largest
   change (``Max``), the smallest (``Min``), or forbids the direction
   (``Disabled``). The pods at the start of a period are the current pods minus
   the changes the autoscaler made within it (:func:`rate_limit`). Waking from
   zero and going to zero bypass them, as they bypass the windows.

Two rules hold the size whatever the load says, checked by the handlers
before they apply a decision: :func:`is_paused` (the
``bananas.dev/autoscaling-paused: "true"`` annotation keeps the current size)
and :func:`fallback_size` (``spec.autoscaling.fallback``: after
``failureThreshold`` polls in a row that could not read Redis, the pool goes
to ``replicas``, within min/max).

The autoscaler keeps a memory between polls: the recommendations within the
longest window (run-length encoded, so a steady pool costs one entry) and the
last time anything was queued or running. The handlers persist it in the
WorkerPool's status, so a restarted operator carries on where the old one
stopped; :meth:`Memory.from_status` reads it defensively, because a status can
be edited by hand. A memory it cannot read starts afresh, counting the
cooldown from now, which errs on the side of keeping pods.

Time is a float of Unix seconds passed in by the caller, so tests drive the
clock directly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bananas.models import PRIORITY_ORDER, Priority, QueueStats
from bananas.operator.meta import PAUSE_ANNOTATION
from bananas.operator.reasons import Reason
from bananas.operator.specs import (
    AutoscalingSpec,
    FallbackSpec,
    RatePolicy,
    RatePolicyType,
    SelectPolicy,
)
from bananas.operator.timefmt import format_epoch, parse_time

#: Most runs of equal recommendations kept in memory (oldest dropped first).
MAX_HISTORY = 64


@dataclass(frozen=True)
class Policy:
    """The sizing rules of one pool (``spec.autoscaling``), in plain numbers."""

    min_replicas: int = 1
    max_replicas: int = 10
    target_jobs_per_replica: int = 10
    activation_jobs: int = 1
    cooldown_seconds: float = 300.0
    scale_up_window: float = 0.0
    scale_down_window: float = 300.0
    scale_up_rates: tuple[RatePolicy, ...] = ()
    scale_up_select: SelectPolicy = SelectPolicy.MAX
    scale_down_rates: tuple[RatePolicy, ...] = ()
    scale_down_select: SelectPolicy = SelectPolicy.MAX

    @classmethod
    def from_spec(cls, spec: AutoscalingSpec) -> Policy:
        """The policy that ``spec.autoscaling`` describes."""
        return cls(
            min_replicas=spec.min_replicas,
            max_replicas=spec.max_replicas,
            target_jobs_per_replica=spec.target_jobs_per_replica,
            activation_jobs=spec.activation_jobs,
            cooldown_seconds=float(spec.cooldown_seconds),
            scale_up_window=float(spec.scale_up.stabilization_window_seconds),
            scale_down_window=float(spec.scale_down.stabilization_window_seconds),
            scale_up_rates=spec.scale_up.policies,
            scale_up_select=spec.scale_up.select_policy,
            scale_down_rates=spec.scale_down.policies,
            scale_down_select=spec.scale_down.select_policy,
        )

    def clamp(self, replicas: int) -> int:
        """``replicas`` within ``[min_replicas, max_replicas]``."""
        return max(self.min_replicas, min(self.max_replicas, replicas))

    @property
    def longest_period(self) -> float:
        """Seconds of size changes the rate policies need to remember."""
        periods = [r.period_seconds for r in (*self.scale_up_rates, *self.scale_down_rates)]
        return float(max(periods, default=0))


@dataclass(frozen=True)
class Change:
    """A size change the autoscaler made: ``delta`` pods (negative: removed) at ``at``."""

    at: float
    delta: int


@dataclass(frozen=True)
class Run:
    """Polls in a row that recommended the same size, from ``first`` to ``last``."""

    replicas: int
    first: float
    last: float


@dataclass(frozen=True)
class Memory:
    """What the autoscaler remembers between polls."""

    history: tuple[Run, ...] = ()
    #: Last time anything was queued or in flight; None when never observed.
    last_active: float | None = None
    #: The size changes within the longest rate-policy period, oldest first.
    changes: tuple[Change, ...] = ()

    def to_status(self) -> dict[str, Any]:
        """The memory as JSON for ``status.autoscaler``."""
        out: dict[str, Any] = {
            "history": [
                {"replicas": r.replicas, "from": format_epoch(r.first), "to": format_epoch(r.last)}
                for r in self.history
            ]
        }
        if self.last_active is not None:
            out["lastActiveTime"] = format_epoch(self.last_active)
        if self.changes:
            out["changes"] = [{"at": format_epoch(c.at), "delta": c.delta} for c in self.changes]
        return out

    @classmethod
    def from_status(cls, value: Any, *, now: float) -> Memory:
        """Read ``status.autoscaler``; whatever is unreadable or in the future is dropped."""
        if not isinstance(value, Mapping):
            return cls()
        last_active = _epoch(value.get("lastActiveTime"))
        if last_active is not None and last_active > now:
            last_active = None
        runs: list[Run] = []
        history = value.get("history")
        for item in history if isinstance(history, list) else ():
            run = _read_run(item, now)
            if run is not None:
                runs.append(run)
        runs.sort(key=lambda r: r.last)
        changes = value.get("changes")
        read = [_read_change(c, now) for c in (changes if isinstance(changes, list) else ())]
        kept = sorted((c for c in read if c is not None), key=lambda c: c.at)
        return cls(
            history=tuple(runs[-MAX_HISTORY:]),
            last_active=last_active,
            changes=tuple(kept[-MAX_HISTORY:]),
        )


def _read_change(item: Any, now: float) -> Change | None:
    if not isinstance(item, Mapping):
        return None
    at, delta = _epoch(item.get("at")), item.get("delta")
    if at is None or at > now or not isinstance(delta, int) or isinstance(delta, bool):
        return None
    return Change(at=at, delta=delta)


def _epoch(value: Any) -> float | None:
    moment = parse_time(value)
    return moment.timestamp() if isinstance(moment, datetime) else None


def _read_run(item: Any, now: float) -> Run | None:
    if not isinstance(item, Mapping):
        return None
    replicas = item.get("replicas")
    first, last = _epoch(item.get("from")), _epoch(item.get("to"))
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        return None
    if first is None or last is None or first > last or last > now:
        return None
    return Run(replicas=replicas, first=first, last=last)


@dataclass(frozen=True)
class PausedKey:
    """A routing key of the pool with paused priorities, and the ready jobs they hold."""

    routing_key: str
    #: The paused priorities among those the pool serves, highest first.
    priorities: tuple[Priority, ...]
    #: Ready jobs of those priorities: waiting, and not counted in the load.
    waiting: int


@dataclass(frozen=True)
class Load:
    """What the pool has to do right now, summed over its routing keys."""

    depth: Mapping[Priority, int] = field(default_factory=dict)
    in_flight: int = 0
    #: Seconds the oldest ready job has waited; None when nothing is ready.
    oldest_age: float | None = None
    #: Delayed jobs and retries due within one poll (any priority: the scheduled set does
    #: not say). Counted so a pool at zero wakes for them: only a running worker (or a
    #: scheduler pod) promotes due jobs, and a pool at zero has none.
    due: int = 0
    #: Routing keys with priorities the pool serves paused; their ready jobs are not in
    #: ``depth``.
    paused: tuple[PausedKey, ...] = ()

    @property
    def paused_waiting(self) -> int:
        """Ready jobs held by a pause, left out of the load."""
        return sum(p.waiting for p in self.paused)

    @property
    def queued(self) -> int:
        """Ready jobs over the pool's priorities."""
        return sum(self.depth.values())

    @property
    def total(self) -> int:
        """Queued plus in flight plus due within a poll: the number the pool is sized by."""
        return self.queued + self.in_flight + self.due


def pool_load(stats: Iterable[QueueStats], priorities: Sequence[Priority]) -> Load:
    """Sum the statistics of a pool's routing keys, counting only ``priorities``.

    Ready jobs of paused priorities are left out of the depth and reported in
    :attr:`Load.paused`; a key whose served priorities are all paused adds no
    due jobs and no oldest age either (promoted, they would wait all the same).
    """
    depth = dict.fromkeys(priorities, 0)
    in_flight = due = 0
    oldest: float | None = None
    paused: list[PausedKey] = []
    for item in stats:
        held = [p for p in PRIORITY_ORDER if p in priorities and p in item.paused]
        for priority in priorities:
            if priority not in held:
                depth[priority] += item.depth.get(priority, 0)
        if held:
            waiting = sum(item.depth.get(p, 0) for p in held)
            paused.append(PausedKey(item.routing_key, tuple(held), waiting))
        in_flight += item.in_flight
        if held and len(held) == len(set(priorities)):
            continue  # every served priority paused: nothing ready or due will be fetched
        due += item.due
        if item.oldest_age is not None:
            oldest = item.oldest_age if oldest is None else max(oldest, item.oldest_age)
    return Load(depth=depth, in_flight=in_flight, oldest_age=oldest, due=due, paused=tuple(paused))


@dataclass(frozen=True)
class Decision:
    """The outcome of one poll."""

    current: int
    desired: int
    #: This poll's recommendation before stabilisation.
    recommendation: int
    load: int
    #: Event reason when the size changes (ScaledUp, ScaledDown, ScaleToZero); None otherwise.
    reason: Reason | None
    #: The numbers behind the decision, for the Event and the Scaling condition.
    message: str
    #: The memory to persist for the next poll.
    memory: Memory

    @property
    def held_back(self) -> bool:
        """True when stabilisation kept the pool from following the recommendation."""
        return self.desired != self.recommendation


def recommend(policy: Policy, current: int, load: int, idle_for: float) -> int:
    """This poll's size before stabilisation (steps 2 of the module docstring)."""
    if current == 0 and load < policy.activation_jobs:
        raw = 0
    else:
        raw = math.ceil(load / policy.target_jobs_per_replica)
    size = policy.clamp(raw)
    if size == 0 and current > 0 and idle_for < policy.cooldown_seconds:
        size = min(1, policy.max_replicas)
    return size


def _record(history: Sequence[Run], replicas: int, now: float, horizon: float) -> tuple[Run, ...]:
    """The runs within ``horizon``, ending with this poll's recommendation.

    The latest run goes on when this poll recommends the same size, even if its end
    lies beyond the horizon: that is how a run read back from the status looks after an
    operator restart (its stored end is only rewritten with a real change, see
    :func:`~bananas.operator.pool_status.status_changed`). Starting a new run there
    would change the status of every pool at the new leader's first polls.
    """
    latest = history[-1] if history and history[-1].last <= now else None
    earlier = history[:-1] if latest is not None else history
    runs = [r for r in earlier if now - horizon <= r.last <= now]
    if latest is not None and latest.replicas == replicas:
        runs.append(Run(replicas=replicas, first=latest.first, last=now))
    else:
        if latest is not None and latest.last >= now - horizon:
            runs.append(latest)
        runs.append(Run(replicas=replicas, first=now, last=now))
    return tuple(runs[-MAX_HISTORY:])


def stabilize(policy: Policy, current: int, history: Sequence[Run], now: float) -> int:
    """Follow the HPA rule: up to the window's lowest, down to the window's highest.

    ``history`` must end with this poll's recommendation.
    """
    up_window = [r.replicas for r in history if r.last >= now - policy.scale_up_window]
    down_window = [r.replicas for r in history if r.last >= now - policy.scale_down_window]
    desired = current
    if up_window and desired < min(up_window):
        desired = min(up_window)
    if down_window and desired > max(down_window):
        desired = max(down_window)
    return desired


def _period_limit(
    rule: RatePolicy, current: int, changes: Sequence[Change], now: float, up: bool
) -> int:
    """The size one rate policy allows in one direction."""
    recent = [c.delta for c in changes if c.at > now - rule.period_seconds]
    if up:
        start = current - sum(d for d in recent if d > 0)
        if rule.type is RatePolicyType.PODS:
            return start + rule.value
        return math.ceil(start * (1 + rule.value / 100))
    start = current - sum(d for d in recent if d < 0)
    if rule.type is RatePolicyType.PODS:
        return start - rule.value
    return math.ceil(start * (1 - rule.value / 100))


def rate_limit(
    policy: Policy, current: int, desired: int, changes: Sequence[Change], now: float
) -> int:
    """``desired`` as far as the rate policies let the pool move from ``current`` now.

    No policy in a direction means no limit; ``Disabled`` means no move at all.
    """
    up = desired > current
    rules = policy.scale_up_rates if up else policy.scale_down_rates
    select = policy.scale_up_select if up else policy.scale_down_select
    if desired == current or (not rules and select is not SelectPolicy.DISABLED):
        return desired
    if select is SelectPolicy.DISABLED:
        return current
    limits = [_period_limit(rule, current, changes, now, up) for rule in rules]
    # Max: the policy allowing the largest change; Min: the smallest.
    largest = select is SelectPolicy.MAX
    if up:
        limit = max(limits) if largest else min(limits)
        return max(current, min(desired, limit))
    limit = min(limits) if largest else max(limits)
    return min(current, max(desired, limit))


def is_paused(annotations: Mapping[str, str]) -> bool:
    """Whether the pause annotation (``bananas.dev/autoscaling-paused: "true"``) holds the pool."""
    return str(annotations.get(PAUSE_ANNOTATION, "")).strip().lower() == "true"


def fallback_size(fallback: FallbackSpec | None, failures: int) -> int | None:
    """The fallback size after ``failures`` unreadable polls in a row, or None."""
    if fallback is None or failures < fallback.failure_threshold:
        return None
    return fallback.replicas


def decide(policy: Policy, current: int, load: Load, now: float, memory: Memory) -> Decision:
    """Size the pool for this poll. Pure: the same inputs give the same decision."""
    total = load.total
    if total > 0:
        last_active = now
    elif memory.last_active is None or memory.last_active > now:
        # Nothing known (first poll, lost or hand-edited memory): count the cooldown from now.
        last_active = now
    else:
        last_active = memory.last_active
    idle_for = now - last_active
    rec = recommend(policy, current, total, idle_for)
    horizon = max(policy.scale_up_window, policy.scale_down_window)
    history = _record(memory.history, rec, now, horizon)

    limited = ""
    if rec == 0:
        desired = 0  # the cooldown already held it back; no window on top
    else:
        desired = stabilize(policy, current, history, now)
        if current == 0:
            desired = max(desired, 1)  # activation wakes the pool at once
        else:
            wanted = policy.clamp(desired)
            desired = rate_limit(policy, current, wanted, memory.changes, now)
            if desired != wanted:
                limited = f", rate-limited from {wanted}"
    desired = policy.clamp(desired)
    changes = _remember_change(memory.changes, current, desired, now, policy.longest_period)

    reason = _reason(current, desired)
    due = f" + {load.due} due" if load.due else ""
    if load.paused_waiting:
        due += f" ({load.paused_waiting} paused not counted)"
    message = (
        f"{current} -> {desired} replicas: {load.queued} queued + {load.in_flight} in flight"
        f"{due} = {total} jobs at {policy.target_jobs_per_replica} per replica"
        f" (recommended {rec}, bounds {policy.min_replicas}..{policy.max_replicas},"
        f" idle {idle_for:.0f}s of {policy.cooldown_seconds:.0f}s cooldown{limited})"
    )
    return Decision(
        current=current,
        desired=desired,
        recommendation=rec,
        load=total,
        reason=reason,
        message=message,
        memory=Memory(history=history, last_active=last_active, changes=changes),
    )


def _remember_change(
    changes: Sequence[Change], current: int, desired: int, now: float, horizon: float
) -> tuple[Change, ...]:
    """The changes still within ``horizon`` seconds, with this poll's if it changed the size."""
    if horizon <= 0:
        return ()
    kept = [c for c in changes if now - horizon < c.at <= now]
    if desired != current:
        kept.append(Change(at=now, delta=desired - current))
    return tuple(kept[-MAX_HISTORY:])


def _reason(current: int, desired: int) -> Reason | None:
    if desired > current:
        return Reason.SCALED_UP
    if desired == 0 and current > 0:
        return Reason.SCALE_TO_ZERO
    if desired < current:
        return Reason.SCALED_DOWN
    return None

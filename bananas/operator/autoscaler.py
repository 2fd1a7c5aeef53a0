"""The queue-depth autoscaler: a pure function from (policy, load, memory, now) to a size.

How a WorkerPool is sized, on every poll:

1. **Load** is the ready jobs of the pool's routing keys, counting only the
   priorities the pool serves, plus the jobs in flight on those routing keys,
   plus the delayed jobs and retries due within one poll (so a pool at zero,
   which has no worker to promote them, wakes for them).
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

from bananas.models import Priority, QueueStats
from bananas.operator.reasons import Reason
from bananas.operator.specs import AutoscalingSpec
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
        )

    def clamp(self, replicas: int) -> int:
        """``replicas`` within ``[min_replicas, max_replicas]``."""
        return max(self.min_replicas, min(self.max_replicas, replicas))


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
        return cls(history=tuple(runs[-MAX_HISTORY:]), last_active=last_active)


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

    @property
    def queued(self) -> int:
        """Ready jobs over the pool's priorities."""
        return sum(self.depth.values())

    @property
    def total(self) -> int:
        """Queued plus in flight plus due within a poll: the number the pool is sized by."""
        return self.queued + self.in_flight + self.due


def pool_load(stats: Iterable[QueueStats], priorities: Sequence[Priority]) -> Load:
    """Sum the statistics of a pool's routing keys, counting only ``priorities``."""
    depth = dict.fromkeys(priorities, 0)
    in_flight = due = 0
    oldest: float | None = None
    for item in stats:
        for priority in priorities:
            depth[priority] += item.depth.get(priority, 0)
        in_flight += item.in_flight
        due += item.due
        if item.oldest_age is not None:
            oldest = item.oldest_age if oldest is None else max(oldest, item.oldest_age)
    return Load(depth=depth, in_flight=in_flight, oldest_age=oldest, due=due)


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
    runs = [r for r in history if r.last >= now - horizon and r.last <= now]
    if runs and runs[-1].replicas == replicas:
        runs[-1] = Run(replicas=replicas, first=runs[-1].first, last=now)
    else:
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

    if rec == 0:
        desired = 0  # the cooldown already held it back; no window on top
    else:
        desired = stabilize(policy, current, history, now)
        if current == 0:
            desired = max(desired, 1)  # activation wakes the pool at once
    desired = policy.clamp(desired)

    reason = _reason(current, desired)
    due = f" + {load.due} due" if load.due else ""
    message = (
        f"{current} -> {desired} replicas: {load.queued} queued + {load.in_flight} in flight"
        f"{due} = {total} jobs at {policy.target_jobs_per_replica} per replica"
        f" (recommended {rec}, bounds {policy.min_replicas}..{policy.max_replicas},"
        f" idle {idle_for:.0f}s of {policy.cooldown_seconds:.0f}s cooldown)"
    )
    return Decision(
        current=current,
        desired=desired,
        recommendation=rec,
        load=total,
        reason=reason,
        message=message,
        memory=Memory(history=history, last_active=last_active),
    )


def _reason(current: int, desired: int) -> Reason | None:
    if desired > current:
        return Reason.SCALED_UP
    if desired == 0 and current > 0:
        return Reason.SCALE_TO_ZERO
    if desired < current:
        return Reason.SCALED_DOWN
    return None

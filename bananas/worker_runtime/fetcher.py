"""The fetcher: leases as many jobs as there are free slots, fairly.

It leases at most ``concurrency - in flight`` jobs (never more: no prefetch, so a
short job never waits behind a long one on this worker), routing keys in their
configured order and priorities high > normal > low, at most :data:`FETCH_BATCH`
per script call. When nothing is ready it blocks on the routes' wake lists and
is woken by the next submit within a round trip; it never polls.

Every :data:`FAIR_EVERY`-th fetch is a *fair turn* (:func:`plan_fetch`, a pure
function): it starts at the next routing key in rotation and first takes one
normal and one low job, alternating which of the two goes first, so even a
single free slot serves both in turn. Neither a later routing key nor a lower
priority is starved for ever by a steady stream of earlier or higher work: with
*n* routing keys the job at the head of a key's low queue waits at most
``2 * FAIR_EVERY * n`` fetches (docs/worker.md, "Fairness").

Stopping never cuts a fetch short: jobs leased by a reply nobody reads would stay
leased until their lease expired, instead of going straight back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from bananas.broker import Broker, FairTurn, Fetched, Leased, new_fetch_id
from bananas.models import Priority
from bananas.ops import Op
from bananas.transport import FastLane
from bananas.worker_runtime.leases import Leases
from bananas.worker_runtime.metrics import Metrics
from bananas.worker_runtime.retry import RedisCaller
from bananas.worker_runtime.sweep import SlowSweep

#: One fetch in this many is a fair turn (see the module docstring).
FAIR_EVERY = 16
#: Longest an idle fetcher blocks before it looks again (a safety net, not the wake path).
IDLE_BLOCK_SECONDS = 1.0
#: Quiet blocks in a row after which an idle fetcher looks at its keys anyway (a safety
#: net for a wake token lost with a worker that died between popping it and fetching)...
SWEEP_EVERY = 30
#: ...every key each time while it has few, at most this many keys a second of quiet over
#: all of them (500 keys: each every 1,000 s, or at once on its next submit), so a quiet
#: fetcher's traffic does not grow with its keys (a look at an empty key is 6 commands).
QUIET_SWEEP_RATE = 0.5
#: Seconds a sweep skips a key that just gave fewer jobs than asked (new work there
#: is seen at once by an idle fetcher, through the key's wake token; by a busy one
#: within this delay).
DRY_SECONDS = 1.0
#: Most jobs leased in one fetch call.
FETCH_BATCH = 200
#: Longest a stopping worker waits for a fetch in flight to return its jobs.
FETCH_FINISH_TIMEOUT = 10.0


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchAttempt:
    """One fetch's id (``fetch.lua``'s idempotency key) and how many jobs it may lease."""

    id: str
    free: int


@dataclass(frozen=True)
class FetchPlan:
    """The routing keys one fetch visits, in order, and its fair mode."""

    routes: tuple[str, ...]
    fair: FairTurn


def plan_fetch(number: int, routes: Sequence[str], every: int = FAIR_EVERY) -> FetchPlan:
    """The plan of fetch number ``number`` (1-based) over ``routes`` (non-empty).

    Fetch ``k * every`` is fair turn ``k``: it starts at key ``k mod n`` and goes round;
    a key leads every ``n``-th fair turn, and on its own leading turns it alternates
    normal-first and low-first, so every key serves both lower priorities in turn.
    Every other fetch visits ``routes`` in order with no fair mode.
    """
    order = tuple(routes)
    if number % every:
        return FetchPlan(order, FairTurn.NONE)
    turn = number // every
    shift = turn % len(order)
    lead = FairTurn.NORMAL_FIRST if (turn // len(order)) % 2 == 0 else FairTurn.LOW_FIRST
    return FetchPlan(order[shift:] + order[:shift], lead)


class Fetcher:
    """Leases jobs for free slots and hands each to ``deliver`` (see the module docstring)."""

    def __init__(
        self,
        broker: Broker,
        redis: RedisCaller,
        leases: Leases,
        deliver: Callable[[str, Leased], None],
        *,
        routes: Sequence[str],
        priorities: Sequence[Priority],
        cluster: bool,
        metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics
        self.broker = broker
        self.redis = redis
        self.leases = leases
        self.deliver = deliver
        self.routes = tuple(routes)
        self.priorities = tuple(priorities)
        self.cluster = cluster
        self._lane: FastLane | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._in_fetch = False
        #: Keys a sweep skips until then (monotonic s): they just gave less than asked.
        self._dry: dict[str, float] = {}
        quiet = SWEEP_EVERY * IDLE_BLOCK_SECONDS
        self._quiet = SlowSweep(period=quiet, rate=QUIET_SWEEP_RATE, gap=quiet)

    def start(self, spawn: Callable[..., asyncio.Task[None]], lane: FastLane | None) -> None:
        """Start fetching on ``lane`` (a dedicated connection, or None for the pool)."""
        self._lane = lane
        self._task = spawn(self._run(), name="bananas-fetcher")

    async def stop(self) -> None:
        """Stop fetching; a fetch in flight finishes first, so its jobs can be handed back."""
        self._stopping = True
        task = self._task
        if task is None:
            return
        if self._in_fetch:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), FETCH_FINISH_TIMEOUT)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        number = 0
        sweep = True  # visit every key (at start, while busy, and as a safety net)
        while not self._stopping:
            if self.leases.free() <= 0:
                await self.leases.slot_freed()
                continue
            if sweep:
                number += 1
                attempt = FetchAttempt(new_fetch_id(), self.leases.free())
                got = await self._call_fetch(plan_fetch(number, self.routes), attempt)
                # Every free slot filled: more may be ready, sweep again. Otherwise wait.
                sweep = got >= attempt.free
                continue
            woken = await self._idle()
            if self._stopping:
                return
            # The token names its key: fetch from that key alone (a sweep per token would
            # cost one script call per key served, for nothing). No token for a while:
            # look at the keys the quiet sweep picks.
            if woken is None:
                sweep = await self._fetch_quiet()
            else:
                sweep = await self._fetch_woken(woken)

    async def _call_fetch(self, plan: FetchPlan, attempt: FetchAttempt) -> int:
        # One id and one budget per fetch, kept when RedisCaller sends it again after a
        # lost reply: the script then hands back what the first try leased.
        self._in_fetch = True
        try:
            return await self.redis.call(partial(self._fetch, plan, attempt), self._lane)
        finally:
            self._in_fetch = False

    def _fetch(self, plan: FetchPlan, attempt: FetchAttempt) -> Op[int]:
        free = attempt.free
        total = 0
        now = time.monotonic()
        sweep = len(plan.routes) > 1
        for rk in plan.routes:
            if sweep and self._dry.get(rk, 0.0) > now:
                continue  # it gave less than asked a moment ago; its token will say more
            want = min(free - total, FETCH_BATCH)
            fetched = yield from self.broker.fetch_batch(
                rk,
                want,
                self.leases.lease_ms,
                fair=plan.fair,
                priorities=self.priorities,
                fetch_id=attempt.id,
            )
            for item in fetched.leased:
                if not self.leases.holds(item):  # (a re-sent fetch returns them again)
                    self.leases.took(rk, item)
                    self.deliver(rk, item)
            self._report(rk, fetched)
            total += len(fetched.leased)
            if len(fetched.leased) < want:
                self._dry[rk] = now + DRY_SECONDS
            else:
                self._dry.pop(rk, None)
            if total >= free:
                break
        return total

    def _report(self, routing_key: str, fetched: Fetched) -> None:
        """Log (and count) what the fetch script dropped or dead-lettered."""
        if fetched.orphans:
            if self.metrics is not None:
                self.metrics.orphaned.labels(routing_key).inc(len(fetched.orphans))
            logger.warning(
                "dropped %d queue entr%s of %s with no job record: %s",
                len(fetched.orphans),
                "y" if len(fetched.orphans) == 1 else "ies",
                routing_key,
                ", ".join(fetched.orphans[:10]),
            )
        for job_id, reason in fetched.dead:
            logger.warning("dead-lettered job %s of %s at fetch: %s", job_id, routing_key, reason)

    async def _idle(self) -> str | None:
        """Block until a wake token arrives; returns its routing key. After
        :data:`SWEEP_EVERY` quiet blocks in a row it returns None: the caller then sweeps
        every key once (a safety net for a token lost with a worker that died)."""
        for _ in range(SWEEP_EVERY):
            woken = await self.redis.call(self._wait_for_work, self._lane)
            if woken is not None or self._stopping:
                return woken
        return None

    async def _fetch_woken(self, routing_key: str) -> bool:
        """Fetch from the one key whose token woke the fetcher; True when that filled
        every free slot (so the next fetch sweeps: other keys may have work too)."""
        attempt = FetchAttempt(new_fetch_id(), self.leases.free())
        self._dry.pop(routing_key, None)  # its token says it has work again
        got = await self._call_fetch(FetchPlan((routing_key,), FairTurn.NONE), attempt)
        return got >= attempt.free

    async def _fetch_quiet(self) -> bool:
        """The safety net after :data:`SWEEP_EVERY` quiet blocks: fetch from the keys the
        quiet sweep picks (see :data:`QUIET_SWEEP_RATE`); True when that filled every free
        slot (the next fetch sweeps every key)."""
        picked = self._quiet.take(self.routes, time.monotonic())
        if not picked:
            return False
        attempt = FetchAttempt(new_fetch_id(), self.leases.free())
        got = await self._call_fetch(FetchPlan(tuple(picked), FairTurn.NONE), attempt)
        return got >= attempt.free

    def _wait_for_work(self) -> Op[str | None]:
        """The one place the fetcher waits on Redis: the routing key whose token woke it."""
        woken = yield from self.broker.wait_for_route(
            self.routes, IDLE_BLOCK_SECONDS, cluster=self.cluster
        )
        return woken

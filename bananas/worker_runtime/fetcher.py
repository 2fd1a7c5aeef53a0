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

**Single hop** (on a single server with a dedicated lane; docs/architecture.md,
"Single-hop wake-up"): each routing key has a *current fetch id*, kept until a fetch
with it returns a job. A fetch that leases fewer jobs than asked there registers an id
as idle (for :data:`IDLE_REGISTRATION_MS`, on Redis' clock): its own when it leased
nothing, else the next one it was given, which becomes the current id; the idle fetcher
blocks on the registered id's hand-off list beside the wake lists. A submit that finds
the registration leases its job to the id (``enqueue.lua``) and pushes it onto that
list: the blocking pop returns the job itself, one hop after the submit instead of two.
The job is in the id's fetch record too, so whatever goes wrong between the pop and the
fetcher (a reply lost on the wire, a stop) the next fetch with the same id returns it:
after a failed pop the fetcher sweeps at once, and a stopping fetcher unregisters each
key with such a fetch and hands back what it returns. A fetch that fills every slot
after registering a key removes the registration again (no job waits in a busy worker);
a registration is renewed before it expires while the fetcher stays idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from bananas.broker import Broker, FairTurn, Fetched, Leased, Woken, new_fetch_id
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
#: How long an idle registration lasts (single hop): a worker killed while idle can be
#: handed one job per routing key in this time, recovered when its lease expires.
IDLE_REGISTRATION_MS = 10_000
#: Seconds before a registration expires at which an idle fetcher renews it.
IDLE_RENEW_MARGIN = 2 * IDLE_BLOCK_SECONDS
#: Most routing keys a worker may serve for single hop: each registered key costs a fetch
#: per renewal and two keys in the idle blocking pop (a worker of hundreds of keys keeps
#: the two-hop path, whose idle cost does not grow with its keys' registrations).
SINGLE_HOP_MAX_ROUTES = 16


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchAttempt:
    """One fetch's ids (``fetch.lua``'s idempotency key, one per routing key: each key's
    current fetch id) and how many jobs it may lease."""

    ids: dict[str, str]
    #: Single hop: the id each key registers when this fetch leases some jobs, not all.
    next_ids: dict[str, str]
    free: int


@dataclass(frozen=True)
class RouteOutcome:
    """What one fetch did on one routing key: did it return a job, which id it
    registered idle ("" none)."""

    got: bool
    idle: str


@dataclass(frozen=True)
class FetchPlan:
    """The routing keys one fetch visits, in order, and its fair mode."""

    routes: tuple[str, ...]
    fair: FairTurn
    #: A sweep skips keys that just gave less than asked; a revisit of the registered
    #: keys (single hop: renewal, recovery of a lost hand-off) does not.
    skip_dry: bool = True


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
        #: Single hop: on when the fetcher has a lane of its own on a single server.
        self.single_hop = False
        #: Each key's current fetch id (kept until a fetch with it returns a job).
        self._ids: dict[str, str] = {rk: new_fetch_id() for rk in self.routes}
        #: Keys whose current id is registered idle -> when it expires (monotonic s).
        self._registered: dict[str, float] = {}
        quiet = SWEEP_EVERY * IDLE_BLOCK_SECONDS
        self._quiet = SlowSweep(period=quiet, rate=QUIET_SWEEP_RATE, gap=quiet)

    def start(self, spawn: Callable[..., asyncio.Task[None]], lane: FastLane | None) -> None:
        """Start fetching on ``lane`` (a dedicated connection, or None for the pool)."""
        self._lane = lane
        # (the hand-off pop must not be resent blindly, which only a lane guarantees; its
        # keys span routing keys, which only a single server allows)
        self.single_hop = (
            lane is not None and not self.cluster and len(self.routes) <= SINGLE_HOP_MAX_ROUTES
        )
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
        if self.single_hop:
            await self._unregister(self.routes, hand_back=True)

    async def _run(self) -> None:
        number = 0
        sweep = True  # visit every key (at start, while busy, and as a safety net)
        pending: str | None = None  # a key to fetch from alone once a slot is free
        while not self._stopping:
            if self.leases.free() <= 0:
                await self.leases.slot_freed()
                continue
            if pending is not None:
                sweep, pending = await self._fetch_woken(pending), None
                continue
            if sweep:
                number += 1
                attempt = self._attempt()
                got = await self._call_fetch(plan_fetch(number, self.routes), attempt)
                # Every free slot filled: more may be ready, sweep again. Otherwise wait.
                sweep = got >= attempt.free
                continue
            woken = await self._idle()
            if self._stopping:
                return  # (a job handed meanwhile is handed back by stop)
            if woken is None:  # no token for a while: look at the keys the quiet sweep picks
                sweep = await self._fetch_quiet()
                continue
            if woken is REVISIT:  # a registration to renew, a hand-off pop that failed
                sweep = await self._revisit()
                continue
            if woken.handed is not None:
                self._take_handed(woken.route, woken.handed)
                await asyncio.sleep(0)  # its slot starts the job before the next fetch is sent
            # The token names its key: fetch from that key alone (a sweep per token would
            # cost one script call per key served, for nothing). After a hand-off the same
            # fetch registers the key as idle again, or leases what else is ready there.
            pending = woken.route

    def _attempt(self) -> FetchAttempt:
        nexts = {rk: new_fetch_id() for rk in self.routes} if self.single_hop else {}
        return FetchAttempt(dict(self._ids), nexts, self.leases.free())

    async def _call_fetch(self, plan: FetchPlan, attempt: FetchAttempt) -> int:
        # One id per key and one budget per fetch, kept when RedisCaller sends it again
        # after a lost reply: the script then hands back what the first try leased.
        self._in_fetch = True
        outcomes: dict[str, RouteOutcome] = {}
        try:
            total = await self.redis.call(partial(self._fetch, plan, attempt, outcomes), self._lane)
        finally:
            self._in_fetch = False
        self._settle(outcomes, attempt)
        if total >= attempt.free and any(o.idle for o in outcomes.values()):
            # A key registered idle, then a later key filled every slot: no job may be
            # handed to a worker with no free slot, so the registration goes again.
            await self._unregister([rk for rk, o in outcomes.items() if o.idle], hand_back=False)
        return total

    def _settle(self, outcomes: dict[str, RouteOutcome], attempt: FetchAttempt) -> None:
        """After a fetch: a key's id that returned a job is spent; the id registered idle
        (its record empty) is the key's current id."""
        expires = time.monotonic() + IDLE_REGISTRATION_MS / 1000
        for rk, outcome in outcomes.items():
            if outcome.idle:
                self._ids[rk] = outcome.idle
                self._registered[rk] = expires
            else:
                self._registered.pop(rk, None)
                if outcome.got:
                    self._ids[rk] = new_fetch_id()

    def _fetch(
        self, plan: FetchPlan, attempt: FetchAttempt, outcomes: dict[str, RouteOutcome]
    ) -> Op[int]:
        outcomes.clear()  # (rebuilt from the start when RedisCaller sends it again)
        free = attempt.free
        total = 0
        now = time.monotonic()
        sweep = len(plan.routes) > 1 and plan.skip_dry
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
                fetch_id=attempt.ids[rk],
                idle_ms=IDLE_REGISTRATION_MS if self.single_hop else 0,
                registered=rk in self._registered,
                next_id=attempt.next_ids.get(rk, ""),
            )
            outcomes[rk] = RouteOutcome(bool(fetched.leased), fetched.idle)
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

    def _take_handed(self, routing_key: str, item: Leased) -> None:
        """Start a job a submit leased to this worker's registration (single hop).

        The registration's id is spent: a submit leases one job to a registration, and
        a fetch registers its id only while nothing is leased under it, so the id's
        record holds this job alone."""
        self._registered.pop(routing_key, None)  # (the submit removed it)
        self._ids[routing_key] = new_fetch_id()
        if not self.leases.holds(item):
            self.leases.took(routing_key, item)
            self.deliver(routing_key, item)

    async def _unregister(self, routes: Sequence[str], *, hand_back: bool) -> None:
        """Remove the idle registrations of ``routes`` (single hop), one try each; a job
        a submit handed to one meanwhile is handed back (``hand_back``, a stopping
        worker) or taken. A key whose try fails keeps its registration until it expires
        (a job handed to it then is recovered when its lease expires)."""
        for rk in routes:
            fid = self._ids[rk]
            op = self.broker.fetch_batch(
                rk, 0, self.leases.lease_ms, priorities=self.priorities, fetch_id=fid,
                registered=True,
            )  # fmt: skip
            fetched = await self.redis.attempt(op, "unregistering an idle worker")
            if fetched is None:
                continue
            self._registered.pop(rk, None)
            handed = [item for item in fetched.leased if not self.leases.holds(item)]
            if fetched.leased:
                self._ids[rk] = new_fetch_id()
            if hand_back:
                await self.leases.release([(rk, item) for item in handed])
            else:
                for item in handed:
                    self._take_handed(rk, item)

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

    async def _idle(self) -> Woken | None:
        """Block until a wake token or a handed job arrives (what woke the fetcher). None
        after :data:`SWEEP_EVERY` quiet blocks in a row (the caller then looks at the keys
        the paced quiet sweep picks, :meth:`_fetch_quiet`: a safety net for a token lost
        with a worker that died); :data:`REVISIT`
        when a registration is due for renewal, or after a failed hand-off pop (the
        revisit's fetches, with the same ids, return a job the pop may have taken)."""
        for _ in range(SWEEP_EVERY):
            if self._registered and min(self._registered.values()) - IDLE_RENEW_MARGIN < (
                time.monotonic()
            ):
                return REVISIT
            woken = await self.redis.call(self._waiter(), self._lane)
            if woken is not None or self._stopping:
                return woken
        return None

    async def _revisit(self) -> bool:
        """Fetch from every registered key, dry or not (see :meth:`_idle`); True when
        that filled every free slot."""
        routes = tuple(rk for rk in self.routes if rk in self._registered)
        if not routes:
            return True  # (nothing registered: a sweep)
        attempt = self._attempt()
        got = await self._call_fetch(FetchPlan(routes, FairTurn.NONE, skip_dry=False), attempt)
        return got >= attempt.free

    async def _fetch_woken(self, routing_key: str) -> bool:
        """Fetch from the one key whose token woke the fetcher; True when that filled
        every free slot (so the next fetch sweeps: other keys may have work too)."""
        attempt = self._attempt()
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
        attempt = self._attempt()
        got = await self._call_fetch(FetchPlan(tuple(picked), FairTurn.NONE), attempt)
        return got >= attempt.free

    def _waiter(self) -> Callable[[], Op[Woken | None]]:
        """What RedisCaller runs for one idle block: the blocking pop, and, when it is
        built again after a failure, :data:`REVISIT` at once (the pop's reply may have
        been a handed job, which only a fetch with the same id gets back)."""
        tries = 0

        def make() -> Op[Woken | None]:
            nonlocal tries
            tries += 1
            if tries > 1 and self._registered:
                return _recover()
            return self._wait_for_work()

        return make

    def _wait_for_work(self) -> Op[Woken | None]:
        """The one place the fetcher waits on Redis: what woke it, or None."""
        if self.single_hop:
            handoffs = {rk: self._ids[rk] for rk in self._registered}
            woken = yield from self.broker.wait_for_handoff(
                handoffs, self.routes, IDLE_BLOCK_SECONDS
            )
            return woken
        route = yield from self.broker.wait_for_route(
            self.routes, IDLE_BLOCK_SECONDS, cluster=self.cluster
        )
        return None if route is None else Woken(route)


#: What the idle block returns for a revisit of the registered keys (:meth:`Fetcher._idle`).
REVISIT = Woken("")


def _recover() -> Op[Woken | None]:
    """An operation with no round trip that returns :data:`REVISIT`."""
    return REVISIT
    yield  # (a generator, like every operation)

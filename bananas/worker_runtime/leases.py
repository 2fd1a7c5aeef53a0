"""The leases a worker holds, and the reaping of leases other workers left behind.

:class:`Leases` is the one owner of what this worker holds: the jobs it leased
(with their lease tokens) and the in-flight count that bounds the next fetch. The
fetcher records what it leased (:meth:`Leases.took`), a slot reports what it
finished (:meth:`Leases.finished`), and the supervisor drains and releases through
it on shutdown. Everything else reads it through methods.

- **renew**: every third of a lease, every held lease is extended in one call per
  routing key, fenced by its token (the worker's record is published with it); a
  lease reaped after a stall comes back as lost, and that job's result will be
  refused.
- **the stale-delivery rule**: a job can be delivered to this worker again (its
  lease expired and it was reaped and fetched anew) while the old run is still
  going. Only the delivery whose token is held stops being renewed when a run
  ends; a newer one keeps its lease.
- **release**: leases handed back (unstarted jobs at shutdown, or whatever is left
  after the drain) go straight back to the head of their queue, not after a lease
  expiry.
- **drain**: waits, within the grace period, until nothing is in flight.

:class:`Reaper` returns expired leases of dead workers to their queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

import orjson

from bananas.broker import Broker, Leased, Reaped
from bananas.broker import Held as Handback
from bananas.client import AsyncClient
from bananas.errors import BananasError, RedisOutOfMemoryError
from bananas.models import Priority
from bananas.ops import Op
from bananas.worker_runtime.metrics import Metrics
from bananas.worker_runtime.retry import RedisCaller
from bananas.worker_runtime.sweep import SlowSweep
from bananas.workflow_store import WorkflowStore

logger = logging.getLogger(__name__)

#: How often expired leases are looked for on a key holding leases, in seconds.
REAP_INTERVAL = 0.5
#: How often a key holding no lease is looked at (seconds), at the most often...
REAP_IDLE_MIN = 2.0
#: ...and how many such looks per second a reaper spends at most, over all its keys.
REAP_IDLE_RATE = 100.0

#: A leased job and the routing key it came from.
Held = tuple[str, Leased]


class Leases:
    """The jobs this worker holds and how many are in flight (see the module docstring)."""

    def __init__(
        self, client: AsyncClient, *, worker_id: str, lease_ms: int, concurrency: int
    ) -> None:
        self.client = client
        self.broker: Broker = client.broker
        self.worker_id = worker_id
        self.lease_ms = lease_ms
        self.concurrency = concurrency
        self._held: dict[str, Held] = {}
        self._leased_at: dict[str, float] = {}
        self._in_flight = 0
        self._slot_free = asyncio.Event()
        self._idle = asyncio.Event()

    @property
    def in_flight(self) -> int:
        """Jobs leased and not yet finished (running, or waiting for a slot)."""
        return self._in_flight

    def free(self) -> int:
        """How many more jobs may be leased now (there is no prefetch beyond free slots)."""
        return self.concurrency - self._in_flight

    async def slot_freed(self) -> None:
        """Wait until a job in flight finishes."""
        self._slot_free.clear()
        await self._slot_free.wait()

    def took(self, routing_key: str, leased: Leased) -> None:
        """Record a job just leased: it is in flight and its lease is renewed from now."""
        self._in_flight += 1
        self._held[leased.id] = (routing_key, leased)
        self._leased_at[leased.id] = time.time()

    def holds(self, leased: Leased) -> bool:
        """Is this delivery (same id and token) already held? A fetch re-sent after a lost
        reply returns the jobs the first try leased; they are taken once."""
        entry = self._held.get(leased.id)
        return entry is not None and entry[1].attempt == leased.attempt

    def finished(self, leased: Leased) -> None:
        """Record a job whose run ended: no more renewals (the ack is on its way)."""
        entry = self._held.get(leased.id)
        if entry is not None and entry[1].attempt == leased.attempt:
            del self._held[leased.id]
        # (a newer delivery of the same job to this worker keeps its lease renewed)
        self._done_one()

    def leased_at(self) -> dict[str, float]:
        """When each held job was leased (epoch seconds), for the heartbeat record."""
        for job_id in [j for j in self._leased_at if j not in self._held]:
            del self._leased_at[job_id]
        return dict(self._leased_at)

    def give_back(self, unstarted: Sequence[Held]) -> list[Held]:
        """Take jobs that never started out of flight; returns those whose lease is still held."""
        held = []
        for item in unstarted:
            self._in_flight -= 1
            if self._held.pop(item[1].id, None) is not None:
                held.append(item)
        if self._in_flight == 0:
            self._idle.set()
        return held

    def renew(self) -> Op[None]:
        """Extend every held lease, one call per routing key; warn about the ones lost."""
        by_route: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for rk, leased in list(self._held.values()):
            by_route[rk].append((leased.id, leased.attempt))
        for rk, held in by_route.items():
            lost = yield from self.broker.renew(rk, held, self.lease_ms)
            # An ack that crossed this renew on another connection is not a lost lease.
            lost = [i for i in lost if i in self._held]
            if lost:
                logger.warning(
                    "worker %s lost the lease of %d job(s) on %s (reaped after a "
                    "stall); their results will be refused",
                    self.worker_id,
                    len(lost),
                    rk,
                )

    async def keep(
        self, redis: RedisCaller, publish: Callable[[float], Op[None]], interval: float
    ) -> None:
        """Renew every ``interval`` s until cancelled.

        ``publish(ttl_s)`` (the worker's record, which ages out after ``ttl_s``) rides
        on the same call, so a worker listed as alive has just renewed its leases.
        """
        while True:
            await redis.call(partial(self._renew_and, publish, max(interval * 3, 5.0)))
            await asyncio.sleep(interval)

    def _renew_and(self, publish: Callable[[float], Op[None]], ttl_s: float) -> Op[None]:
        yield from self.renew()
        try:
            yield from publish(ttl_s)
        except RedisOutOfMemoryError:
            # Redis is full: the leases were renewed (renew.lua may run then), the
            # worker's record cannot be written. Not a failure of the renewal, which
            # would otherwise be retried (and logged) at every heartbeat; /readyz
            # already says why the worker takes no work.
            logger.debug("worker record not published: Redis is out of memory")

    async def drain(self, grace: float, hurry: asyncio.Event | None) -> None:
        """Wait until nothing is in flight, for at most ``grace`` s or until ``hurry`` is set."""
        if self._in_flight <= 0:
            return
        self._idle.clear()
        if self._in_flight <= 0:
            return
        waits = [asyncio.ensure_future(self._idle.wait())]
        if hurry is not None:
            waits.append(asyncio.ensure_future(hurry.wait()))
        logger.info(
            "worker %s draining %d running job(s), up to %gs",
            self.worker_id,
            self._in_flight,
            grace,
        )
        await asyncio.wait(waits, timeout=grace, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()

    async def release(self, items: Sequence[Held]) -> None:
        """Hand leased jobs straight back to the head of their queue (one try per route)."""
        by_route: dict[str, list[Handback]] = defaultdict(list)
        for rk, leased in items:
            by_route[rk].append(_handback(leased))
        for rk, held in by_route.items():
            with contextlib.suppress(BananasError):
                await self.client.run(self.broker.release(rk, held))

    async def release_all(self) -> None:
        """Release every lease still held (jobs cut off at the end of the drain)."""
        leftover = list(self._held.values())
        self._held.clear()
        if leftover:
            await self.release(leftover)
            logger.warning(
                "worker %s released %d unfinished job(s) back to their queue",
                self.worker_id,
                len(leftover),
            )

    def _done_one(self) -> None:
        self._in_flight -= 1
        self._slot_free.set()
        if self._in_flight == 0:
            self._idle.set()


class Reaper:
    """Returns the expired leases of some routing keys to their queues.

    **With the due index** (``Broker.due_index``: every deployment but Redis Cluster) one
    call a pass asks the due index of leases which of the reaper's routes may hold an
    expired lease (``Broker.due_leases``: one ``ZMSCORE`` in a script, whatever the
    number of routes) and visits only those; a visit reaps what expired and settles the
    route's entry to its earliest lease left (or removes it). The first pass visits
    every route, and a :class:`~bananas.worker_runtime.sweep.SlowSweep` keeps visiting
    them in turn, for leases written without the index. The next pass comes when the
    earliest entry falls due, after :data:`REAP_INTERVAL` at the soonest and
    :data:`REAP_IDLE_MIN` at the latest (a lease taken during the wait expires a whole
    lease after it was taken): an idle reaper sends about one command every
    :data:`REAP_IDLE_MIN` seconds plus the slow sweep's, however many keys it serves,
    and an orphan on any key is reaped within :data:`REAP_INTERVAL` of its expiry (of
    :data:`REAP_IDLE_MIN` for a lease shorter than that).

    **On Redis Cluster** (no prefix-wide key can be kept in step with the routes' keys)
    each route is looked at on its own. A route is looked at again when its earliest
    lease expires, every :data:`REAP_INTERVAL` at the most. A route that holds no lease
    at all is looked at again after :data:`REAP_IDLE_MIN` seconds, or later when there
    are so many routes that this would cost more than :data:`REAP_IDLE_RATE` looks per
    second (500 keys: every 5 s). The looks due in one pass go in one round trip (one
    ``ZRANGE`` per route and one ``TIME``), and no pass takes more looks than the budget
    of :data:`REAP_IDLE_RATE` a second has gathered (routes that held a lease at their
    last look first): a burst of routes falling due at once (right after a drain over
    many keys) is spread out instead of sent together. So a reaper sends at most about
    ``REAP_IDLE_RATE`` commands a second however many keys it serves, and an orphan on a
    key is reaped within about ``keys / REAP_IDLE_RATE`` seconds after its lease expired
    (a few keys: within :data:`REAP_INTERVAL`). The workers' lease duration is not
    assumed: a scheduler process reaps for workers configured differently.
    """

    def __init__(
        self,
        broker: Broker,
        redis: RedisCaller,
        routes: Callable[[], Awaitable[Sequence[str]]],
        metrics: Metrics,
        workflows: WorkflowStore | None = None,
    ) -> None:
        self.broker = broker
        self.redis = redis
        self.routes = routes
        self.metrics = metrics
        self.workflows = workflows or WorkflowStore(broker, clock=broker.clock)
        self.idle_max = REAP_IDLE_MIN
        self._next: dict[str, float] = {}
        #: Routes that held a lease at their last look (looked at first when due).
        self._busy: set[str] = set()

    def _schedule(self, routing_key: str, now: float, until_ms: int | None) -> None:
        if until_ms is None:
            self._busy.discard(routing_key)
            self._next[routing_key] = now + self.idle_max
            return
        self._busy.add(routing_key)
        self._next[routing_key] = now + max(REAP_INTERVAL, min(until_ms / 1000, self.idle_max))

    async def run(self) -> None:
        """Reap until cancelled."""
        if self.broker.due_index:
            await self._run_indexed()
        else:
            await self._run_per_route()

    async def _run_indexed(self) -> None:
        loop = asyncio.get_running_loop()
        sweep = SlowSweep()
        routes = await self.routes()
        await self._visit(list(routes))  # the first pass visits every route
        while True:
            due, until = await self.redis.call(partial(self.broker.due_leases, routes))
            await self._visit(due + [rk for rk in sweep.take(routes, loop.time()) if rk not in due])
            wait = REAP_IDLE_MIN if until is None else until / 1000
            await asyncio.sleep(min(max(wait, REAP_INTERVAL), REAP_IDLE_MIN))
            routes = await self.routes()

    async def _visit(self, routes: Sequence[str]) -> None:
        """Settle the entries of ``routes`` in the due index of leases (one call), then
        reap those holding an expired lease. A route whose leases were all acked since
        its entry was set costs two commands inside that call, once."""
        if not routes:
            return
        untils = await self.redis.call(partial(self.broker.settle_leases, routes))
        for rk, until in zip(routes, untils, strict=True):
            if until is not None and until <= 0:
                reaped, _ = await self.redis.call(partial(self._reap, rk))
                self._log(rk, reaped)

    async def _run_per_route(self) -> None:
        loop = asyncio.get_running_loop()
        budget, last = float(REAP_IDLE_RATE), loop.time()
        while True:
            routes = await self.routes()
            self.idle_max = max(REAP_IDLE_MIN, len(routes) / REAP_IDLE_RATE)
            now = loop.time()
            # At most a second's worth of looks saved up (never less than one pass's).
            cap = max(REAP_IDLE_RATE, 1.0)
            budget = min(cap, budget + (now - last) * REAP_IDLE_RATE)
            last = now
            due = [rk for rk in routes if self._next.get(rk, 0.0) <= now]
            if due:
                due.sort(key=lambda rk: rk not in self._busy)  # stable: busy ones first
                take = due[: max(1, int(budget))]
                budget = max(0.0, budget - len(take))
                await self._look(take, loop)
            await asyncio.sleep(REAP_INTERVAL)

    async def _look(self, routes: Sequence[str], loop: asyncio.AbstractEventLoop) -> None:
        """Look at ``routes`` in one round trip; reap those with an expired lease."""
        untils = await self.redis.call(partial(self.broker.earliest_leases, routes))
        for rk, until in zip(routes, untils, strict=True):
            if until is not None and until <= 0:
                reaped, until = await self.redis.call(partial(self._reap, rk))
                self._log(rk, reaped)
            self._schedule(rk, loop.time(), until)

    def _log(self, routing_key: str, reaped: Reaped) -> None:
        requeued, dead = reaped.requeued, reaped.dead
        if requeued or dead:
            self.metrics.reaped.labels(routing_key).inc(requeued + dead)
            logger.warning(
                "reaped %d expired lease(s) on %s (%d dead-lettered)",
                requeued + dead,
                routing_key,
                dead,
            )

    def _reap(self, routing_key: str) -> Op[tuple[Reaped, int | None]]:
        """Reap one routing key, then record the poison workflow steps it dead-lettered on
        their workflows (a reaper that dies in between leaves such a step shown queued).
        Also returns the ms until its earliest lease left expires (None: it holds none)."""
        reaped, until = yield from self.broker.reap_next(routing_key)
        for job_id, reason in reaped.steps:
            yield from self.workflows.fail_step(job_id, reason)
        return reaped, until


def _handback(leased: Leased) -> Handback:
    """What release.lua needs of a leased job: id, token, priority and group (or None)."""
    try:
        data = orjson.loads(leased.record)
        priority = Priority(data.get("priority", "normal"))
        group = data.get("group")
    except (ValueError, AttributeError, orjson.JSONDecodeError):
        return leased.id, leased.attempt, Priority.NORMAL, None
    return leased.id, leased.attempt, priority, group if isinstance(group, str) else None

"""The promoter: moves due delayed jobs and retries into their queues.

:class:`Promoter` runs in every worker but ``thin`` ones (for its routing keys)
and in scheduler processes (for every routing key). Promotion is one atomic
script per routing key, so any number of promoters may run. Between runs it
sleeps exactly until the next due time by blocking on the routes' ``schedwake``
lists, which the enqueue script pushes to when a job due sooner than everything
else arrives: no polling, and a delayed job is promoted within a round trip of
its time.

Which routes a round promotes: **with the due index** (``Broker.due_index``: every
deployment but Redis Cluster) one call asks the due index of scheduled jobs which of
its routes have a job due by Redis' clock and when the next one is
(``Broker.due_scheduled``: one ``ZMSCORE`` in a script, whatever the number of routes);
the round promotes those and the route whose ``schedwake`` token woke it (a writer of a
version before the index still pushes it); each promote settles the route's entry. The
first round promotes every route, and a :class:`~bananas.worker_runtime.sweep.SlowSweep`
settles every route's entry in turn (for jobs scheduled without the index). **On
Redis Cluster** a round promotes every route not known to have nothing scheduled, and
every :data:`FULL_ROUND_EVERY` rounds all of them.

Each round also sweeps the workflows whose client died between storing
the graph and queueing its first steps (``WorkflowStore.sweep``: one command when
there are none). A Redis outage pauses it (one ``interval`` between tries); it resumes
on its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

from bananas.broker import MAX_BLOCK_SECONDS
from bananas.client import AsyncClient
from bananas.ops import Op
from bananas.worker_runtime.retry import RedisCaller
from bananas.worker_runtime.sweep import SlowSweep

#: The last part of a promoter's wait, slept on the local timer (Redis ends a blocking
#: timeout on its 100 ms tick, later under load).
TIMER_SLACK = 0.25
#: Every this many rounds the promoter looks at every route, even those it skips.
FULL_ROUND_EVERY = 30


class Promoter:
    """Moves due delayed jobs and retries of some routing keys into their queues."""

    def __init__(
        self,
        client: AsyncClient,
        routes: Callable[[], Awaitable[Sequence[str]]],
        *,
        interval: float = 1.0,
    ) -> None:
        self.client = client
        self.routes = routes
        self.interval = interval
        self._redis = RedisCaller(client, pause=interval, max_pause=interval)
        #: Routes known to have nothing scheduled: skipped until their schedwake list
        #: says a job was scheduled there (or the next full round).
        self._empty: set[str] = set()
        self._rounds = 0
        #: The route whose schedwake token ended the last wait (promoted next round).
        self._woken: str | None = None

    async def run(self) -> None:
        """Promote until cancelled; survives Redis outages (retries after ``interval``)."""
        if self.client.broker.due_index:
            await self._run_indexed()
        else:
            await self._run_per_route()

    async def _run_indexed(self) -> None:
        loop = asyncio.get_running_loop()
        sweep = SlowSweep()
        routes = list(await self.routes())
        look = list(routes)  # the first round promotes every route
        while True:
            if routes:
                wait = await self._redis.call(partial(self._indexed_round, routes, look))
                self._woken = None
                if wait > 0:
                    await self._wait(routes, wait)
            else:
                await asyncio.sleep(self.interval)
            routes = list(await self.routes())
            look = [self._woken] if self._woken is not None else []
            # (a slow look only settles the route's entry: the next round promotes it if due)
            slow = sweep.take(routes, loop.time())
            if slow:
                await self._redis.call(partial(self.client.broker.settle_scheduled, slow))

    def _indexed_round(self, routes: list[str], look: list[str]) -> Op[float]:
        """Promote the routes of ``routes`` the due index says have a job due, and those
        of ``look``; then sweep workflows whose submit was cut short. Returns seconds
        until the earliest next due time (at most ``interval``)."""
        broker = self.client.broker
        due, until = yield from broker.due_scheduled(routes)
        wait = self.interval if until is None else min(self.interval, until / 1000)
        for rk in dict.fromkeys([*due, *look]):
            _, next_due = yield from broker.promote(rk)
            if next_due is not None:
                wait = min(wait, next_due / 1000)  # ms from now, by Redis' clock
        yield from self.client.workflows.sweep()
        return max(wait, 0.0)

    async def _run_per_route(self) -> None:
        while True:
            routes = list(await self.routes())
            if not routes:
                await asyncio.sleep(self.interval)
                continue
            self._rounds += 1
            if self._rounds % FULL_ROUND_EVERY == 0:
                self._empty.clear()  # a safety net: look at every route now and then
            due = [rk for rk in routes if rk not in self._empty] or routes[:1]
            wait = await self._redis.call(partial(self._round, due))
            if wait > 0:
                await self._wait(routes, wait)

    def _round(self, routes: list[str]) -> Op[float]:
        """Promote ``routes``, then sweep workflows whose submit was cut short; returns
        seconds until the earliest next due time. A route with nothing scheduled is
        skipped from then on until it is woken (so an idle promoter's traffic does not
        grow with the number of routing keys)."""
        broker = self.client.broker
        wait = self.interval
        for rk in routes:
            _, next_due = yield from broker.promote(rk)
            if next_due is None:
                self._empty.add(rk)
            else:
                wait = min(wait, next_due / 1000)  # ms from now, by Redis' clock
        yield from self.client.workflows.sweep()
        return max(wait, 0.0)

    async def _wait(self, routes: list[str], wait: float) -> None:
        """Sleep until the next due time, waking early if a sooner job is scheduled.

        Redis ends a blocking pop's timeout only at its own clock tick (``hz``: every
        100 ms by default), so the wait blocks in Redis until :data:`TIMER_SLACK` before
        the due time and sleeps the rest on this loop's precise timer. A block cut by a
        Redis restart is tried again for what is left of it, never for longer.
        """
        start = time.monotonic()
        if wait > TIMER_SLACK:
            blocked = min(wait - TIMER_SLACK, MAX_BLOCK_SECONDS)
            until = start + blocked
            if await self._redis.call(lambda: self._block(routes, until - time.monotonic())):
                return  # a sooner job was scheduled: promote again now
            if blocked < wait - TIMER_SLACK:
                return  # longer than one block: look again
        remaining = wait - (time.monotonic() - start)
        if remaining > 0:
            await asyncio.sleep(remaining)

    def _block(self, routes: list[str], wait: float) -> Op[bool]:
        """The one place the promoter waits on Redis: True when a sooner job was scheduled
        (on a route then no longer skipped)."""
        woken = yield from self.client.broker.wait_for_due_route(
            routes, wait, cluster=self.client.is_cluster
        )
        if woken is not None:
            self._empty.discard(woken)
            self._woken = woken
        return woken is not None

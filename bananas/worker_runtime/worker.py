"""The worker: a pool of slots fed by batched, leased fetches (seed: ``Pool``).

One asyncio loop runs a handful of tasks:

- the **fetcher** leases as many jobs as there are free slots (never more: no
  prefetch, so a short job never waits behind a long one on this worker), routing
  keys in their configured order and priorities high > normal > low. When nothing
  is ready it blocks on the routes' wake lists (BLPOP) and is woken by the next
  submit within a round trip; it never polls. Every ``FAIR_EVERY``-th fetch is a
  *fair turn*: it starts at the next routing key in rotation and first takes one
  normal and one low job (alternating which of the two goes first, so even a
  single free slot serves both in turn). Neither a later routing key nor a lower
  priority is starved for ever by a steady stream of earlier or higher work: the
  job at the head of the low queue waits at most ``2 * FAIR_EVERY`` fetches.
- ``concurrency`` **slots** take leased jobs from a local queue and run them through
  the :class:`~bananas.worker_runtime.executor.Executor`.
- the **acker** sends finished jobs to Redis in batches, one script call per
  routing key per batch; while one batch is in flight the next one gathers.
- the **heartbeat** renews every held lease in one call per routing key and
  publishes this worker's record; the **reaper** returns expired leases of dead
  workers; the **promoter** (``scheduler.Promoter``) moves due delayed jobs and
  retries (all modes but ``thin``).

Shutdown (``stop``, SIGTERM): stop fetching, hand unstarted jobs back at once, let
running ones finish within the grace period, then cancel what is left, release
its leases straight back to the queue (not after a lease expiry) and flush acks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from bananas.broker import Leased
from bananas.client import AsyncClient
from bananas.commands import FastLane, Op, fast_lane, raise_if_cancelled, run_async
from bananas.config import Settings, WorkerMode
from bananas.errors import BananasError
from bananas.models import Priority, WorkerInfo, utcnow
from bananas.worker_runtime.executor import Executor, Finished
from bananas.worker_runtime.metrics import Metrics
from bananas.worker_runtime.registry import Registry
from bananas.worker_runtime.scheduler import CronScheduler, Promoter

if TYPE_CHECKING:
    from bananas.worker_runtime.health import HealthServer

log = logging.getLogger(__name__)
T = TypeVar("T")

#: One fetch in this many is a fair turn (see the module docstring).
FAIR_EVERY = 16
#: Longest an idle fetcher blocks before it looks again (a safety net, not the wake path).
IDLE_BLOCK_SECONDS = 1.0
#: Most jobs leased in one fetch call.
FETCH_BATCH = 200
#: How often expired leases are looked for, in seconds.
REAP_INTERVAL = 0.5
#: Longest a stopping worker waits for its last acks to reach Redis.
ACK_FLUSH_TIMEOUT = 10.0
#: Pause before retrying a Redis call that failed (doubles up to the max).
RECONNECT_MIN, RECONNECT_MAX = 0.05, 5.0


class Worker:
    """Runs registered handlers for the jobs of some routing keys.

    Embed it in an async application (``await worker.start()`` ... ``await
    worker.stop()``), in a sync one (``worker.start_in_thread()`` ...
    ``worker.stop_in_thread()``), or run it as a process (``bananas worker``).
    Pass the application's :class:`AsyncClient` as ``client`` to share its connections.
    """

    def __init__(
        self,
        registry: Registry,
        settings: Settings | None = None,
        *,
        client: AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        worker_id: str | None = None,
        **overrides: Any,
    ) -> None:
        self.settings = (settings or Settings()).with_changes(**overrides)
        self.settings.check()
        s = self.settings
        self.registry = registry
        self._own_client = client is None
        self.client = client or AsyncClient(
            s.redis_url, prefix=s.prefix, clock=clock, max_retries=s.max_retries, **s.redis_options
        )
        self.broker = self.client.broker
        self.clock = clock
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.metrics = Metrics()
        self.metrics.in_flight.set_function(lambda: self._busy)
        self.lease_ms = int(s.lease_duration * 1000)
        self._threads = ThreadPoolExecutor(
            max_workers=s.concurrency + 4, thread_name_prefix="bananas-handler"
        )
        self.executor = Executor(
            registry,
            job_timeout=s.job_timeout,
            threads=self._threads,
            clock=clock,
            max_result_bytes=s.max_result_bytes,
            backoff_cap=s.retry_backoff_max,
            job_types=s.job_types,
        )
        self.processed = 0
        self.failed = 0
        self.started_at = utcnow()
        self.redis_ok = False
        self.fetching = False
        self._held: dict[str, tuple[str, Leased]] = {}
        self._busy = 0
        self._ready: asyncio.Queue[tuple[str, Leased] | None] = asyncio.Queue()
        self._slot_free = asyncio.Event()
        self._done: list[Finished] = []
        self._done_event = asyncio.Event()
        self._idle = asyncio.Event()
        self._stopping = False
        self._acks_closing = False
        self._in_fetch = False
        self._tasks: list[asyncio.Task[None]] = []
        self._slots: list[asyncio.Task[None]] = []
        self._fetcher: asyncio.Task[None] | None = None
        self._acker: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()
        self._fetch_lane: FastLane | None = None
        self._ack_lane: FastLane | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._extra: list[Callable[[], Awaitable[None]]] = []
        #: Set by ``runner.build_worker`` when this process also fires cron schedules.
        self.cron: CronScheduler | None = None
        #: Set by ``runner.build_worker`` when this process serves /metrics and probes.
        self.health: HealthServer | None = None

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def serves_jobs(self) -> bool:
        return self.settings.mode is not WorkerMode.SCHEDULER_ONLY

    def add_service(self, factory: Callable[[], Awaitable[None]]) -> None:
        """Run another long-lived coroutine (promoter, cron, health server) with the worker."""
        self._extra.append(factory)

    async def start(self) -> None:
        """Start serving; returns at once. Raises if Redis cannot be reached."""
        await self.client.ping()
        self.redis_ok = True
        self._fetch_lane = fast_lane(self.client.redis)
        self._ack_lane = fast_lane(self.client.redis)
        create_task = asyncio.get_running_loop().create_task

        def spawn(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
            task = create_task(coro, name=name)
            task.add_done_callback(_report_crash)
            return task

        if self.serves_jobs:
            self._slots = [
                spawn(self._slot(), name=f"bananas-slot-{i}")
                for i in range(self.settings.concurrency)
            ]
            self._acker = spawn(self._ack_loop(), name="bananas-acker")
            self._fetcher = spawn(self._fetch_loop(), name="bananas-fetcher")
            self._tasks.append(spawn(self._heartbeat_loop(), name="bananas-heartbeat"))
            self._tasks.append(spawn(self.executor.watchdog(), name="bananas-watchdog"))
        if self.settings.mode is not WorkerMode.THIN:
            self._tasks.append(spawn(self._reap_loop(), name="bananas-reaper"))
            promoter = Promoter(
                self.client, self.maintained_routes, interval=self.settings.scheduler_interval
            )
            self._tasks.append(spawn(promoter.run(), name="bananas-promoter"))
        self._tasks += [spawn(_service(factory), name="bananas-service") for factory in self._extra]
        self.fetching = self.serves_jobs
        log.info(
            "worker %s started: routes=%s priorities=%s concurrency=%d mode=%s",
            self.id,
            ",".join(self.settings.routing_keys),
            ",".join(p.value for p in self.settings.priorities),
            self.settings.concurrency,
            self.settings.mode.value,
        )

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Start, serve until ``stop`` is set (or :meth:`stop` is called), then drain."""
        await self.start()
        waiters = [asyncio.ensure_future(self._stopped.wait())]
        if stop is not None:
            waiters.append(asyncio.ensure_future(stop.wait()))
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for w in waiters:
            w.cancel()
        if not self._stopped.is_set():
            await self.stop()

    async def stop(self, grace: float | None = None, *, hurry: asyncio.Event | None = None) -> None:
        """Drain and stop: see the module docstring. ``hurry`` set = end the grace now."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        self.fetching = False
        grace = self.settings.shutdown_timeout if grace is None else grace
        if self._fetcher is not None and self._in_fetch:
            # Never cut a fetch short: jobs leased by a reply nobody reads would stay
            # leased until their lease expired, instead of going straight back.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._fetcher), ACK_FLUSH_TIMEOUT)
        await _cancel(self._fetcher)
        unstarted = self._drain_ready()
        if unstarted:
            await self._release(unstarted)
        await self._wait_idle(grace, hurry)
        for task in self._slots:
            task.cancel()
        await asyncio.gather(*self._slots, return_exceptions=True)
        # Let the acker finish what it is sending (never cancel an ack in flight), but do
        # not wait for ever on a Redis that is gone: those leases expire and are reaped.
        # Only now may it stop: jobs were still finishing during the drain.
        self._acks_closing = True
        self._done_event.set()
        if self._acker is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._acker), ACK_FLUSH_TIMEOUT)
            await _cancel(self._acker)
        leftover = list(self._held.values())
        self._held.clear()
        if leftover:
            await self._release(leftover)
            log.warning(
                "worker %s released %d unfinished job(s) back to their queue",
                self.id,
                len(leftover),
            )
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(BananasError):
            await self.client._run(self.broker.forget_worker(self.id))
        for lane in (self._fetch_lane, self._ack_lane):
            if lane is not None:
                await lane.close()
        self._threads.shutdown(wait=False, cancel_futures=True)
        if self._own_client:
            await self.client.close()
        self._stopped.set()
        log.info("worker %s stopped: processed=%d failed=%d", self.id, self.processed, self.failed)

    def start_in_thread(self) -> None:
        """Run the worker on its own event loop in a background thread (sync apps)."""
        started = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_until_complete(self._stopped.wait())
            loop.close()

        self._thread = threading.Thread(target=main, name="bananas-worker", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            raise failure[0]

    def stop_in_thread(self, grace: float | None = None) -> None:
        """Stop a worker started with :meth:`start_in_thread`; blocks until it has drained."""
        if self._loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.stop(grace), self._loop).result()
        self._thread.join()

    # -- probes -----------------------------------------------------------------------------

    def is_ready(self) -> bool:
        """Redis answered the last call and the process is fetching (or is a scheduler)."""
        serving = self.fetching or (not self.serves_jobs and not self._stopping)
        return self.redis_ok and serving

    def is_alive(self) -> bool:
        """No internal task has died (the loop itself answered the probe)."""
        tasks = [*self._tasks, *self._slots, *(t for t in (self._fetcher, self._acker) if t)]
        return not any(t.done() and not t.cancelled() for t in tasks) or self._stopping

    async def refresh_metrics(self) -> None:
        """Refresh the queue gauges from Redis: one stats call per routing key."""
        for rk in await self.maintained_routes():
            stats = await self.client._run(self.broker.stats(rk))
            counters = await self.client._run(self.broker.counters(rk))
            self.metrics.queue(stats, counters.get("enqueued", 0))

    # -- fetching ---------------------------------------------------------------------------

    async def _fetch_loop(self) -> None:
        rounds = 0
        routes = self.settings.routing_keys
        while not self._stopping:
            free = self.settings.concurrency - self._busy
            if free <= 0:
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            rounds += 1
            fair = 0
            order = routes
            if rounds % FAIR_EVERY == 0:
                turn = rounds // FAIR_EVERY
                order = routes[turn % len(routes) :] + routes[: turn % len(routes)]
                # 1: normal first, 2: low first, alternating on each key's own turns (a key
                # leads every len(routes)-th fair turn), so every key serves both in turn.
                fair = 1 + (turn // len(routes)) % 2
            self._in_fetch = True
            try:
                got = await self._retrying(
                    partial(self._fetch_routes, order, fair), self._fetch_lane
                )
            finally:
                self._in_fetch = False
            if self._stopping:
                return
            if not got:
                await self._retrying(self._block_for_work, self._fetch_lane)

    def _fetch_routes(self, routes: tuple[str, ...], fair: int) -> Op[int]:
        free = self.settings.concurrency - self._busy
        total = 0
        for rk in routes:
            leased = yield from self.broker.fetch(
                rk,
                min(free - total, FETCH_BATCH),
                self.lease_ms,
                fair=fair,
                priorities=self.settings.priorities,
            )
            for item in leased:
                self._busy += 1
                self._held[item.id] = (rk, item)
                self._ready.put_nowait((rk, item))
            total += len(leased)
            if total >= free:
                break
        return total

    def _block_for_work(self) -> Op[bool]:
        keys = [self.broker.route(rk).wake for rk in self.settings.routing_keys]
        woken = yield from self.broker.block(
            keys, IDLE_BLOCK_SECONDS, cluster=self.client.target.is_cluster
        )
        return woken

    # -- running ------------------------------------------------------------------------------

    async def _slot(self) -> None:
        ready, executor, done, metrics = self._ready, self.executor, self._done, self.metrics
        held = self._held
        debug = log.isEnabledFor(logging.DEBUG)
        while True:
            item = await ready.get()
            if item is None:
                return
            rk, leased = item
            finished = await executor.run(rk, leased)
            entry = held.get(leased.id)
            if entry is not None and entry[1].attempt == leased.attempt:
                del held[leased.id]  # finished: no more renewals; the ack is on its way
            # (a newer delivery of the same job to this worker keeps its lease renewed)
            if debug:
                log.debug(
                    "job %s (%s) %s in %.3fs",
                    leased.id,
                    finished.name,
                    finished.status,
                    finished.duration,
                    extra={"job_id": leased.id, "routing_key": rk, "job_name": finished.name},
                )
            done.append(finished)
            self._done_event.set()
            metrics.job_finished(finished.name, finished.status, rk, finished.duration)
            self._busy -= 1
            self._slot_free.set()
            if self._busy == 0:
                self._idle.set()

    async def _ack_loop(self) -> None:
        while True:
            await self._done_event.wait()
            self._done_event.clear()
            await self._flush_acks()
            if self._acks_closing and not self._done:
                return

    async def _flush_acks(self) -> None:
        while self._done:
            batch = self._done.copy()  # the slots hold a reference to this very list
            self._done.clear()
            await self._retrying(partial(self._send, batch), self._ack_lane)

    def _send(self, batch: list[Finished]) -> Op[None]:
        acks: dict[str, list[Finished]] = defaultdict(list)
        fails: dict[str, list[Finished]] = defaultdict(list)
        for f in batch:
            (fails if f.failed else acks)[f.routing_key].append(f)
        for rk, group in acks.items():
            yield from self.broker.ack(rk, [f.outcome for f in group])
            self.processed += len(group)
        for rk, group in fails.items():
            codes = yield from self.broker.fail(rk, [f.outcome for f in group])
            for f, code in zip(group, codes, strict=True):
                context = {"job_id": f.outcome.id, "job_name": f.name, "routing_key": rk}
                if code == 2:
                    self.metrics.dead.labels(f.name, rk).inc()
                    self.failed += 1
                    log.warning(
                        "job %s (%s) dead-lettered: %s",
                        f.outcome.id,
                        f.name,
                        f.outcome.error,
                        extra=context,
                    )
                elif code == 1:
                    self.metrics.retried.labels(f.name, rk).inc()
                    log.debug(
                        "job %s (%s) failed attempt %d, retrying: %s",
                        f.outcome.id,
                        f.name,
                        f.outcome.attempt,
                        f.outcome.error,
                        extra=context,
                    )

    # -- upkeep ------------------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        interval = self.settings.lease_duration / 3
        while True:
            await self._retrying(partial(self._heartbeat, interval))
            await asyncio.sleep(interval)

    def _heartbeat(self, interval: float) -> Op[None]:
        by_route: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for rk, leased in list(self._held.values()):
            by_route[rk].append((leased.id, leased.attempt))
        for rk, held in by_route.items():
            lost = yield from self.broker.renew(rk, held, self.lease_ms)
            # An ack that crossed this renew on another connection is not a lost lease.
            lost = [i for i in lost if i in self._held]
            if lost:
                log.warning(
                    "worker %s lost the lease of %d job(s) on %s (reaped after a "
                    "stall); their results will be refused",
                    self.id,
                    len(lost),
                    rk,
                )
        yield from self.broker.heartbeat(self.info(), ttl_s=max(interval * 3, 5.0))
        self.redis_ok = True

    def info(self) -> WorkerInfo:
        """This worker's heartbeat record."""
        s = self.settings
        return WorkerInfo(
            id=self.id,
            host=socket.gethostname(),
            pid=os.getpid(),
            routing_keys=list(s.routing_keys),
            priorities=list(s.priorities),
            concurrency=s.concurrency,
            in_flight=self._busy,
            processed=self.processed,
            failed=self.failed,
            started_at=self.started_at,
            last_seen=utcnow(),
            mode=s.mode.value,
            pod_name=s.pod_name,
        )

    async def _reap_loop(self) -> None:
        while True:
            for rk in await self.maintained_routes():
                requeued, dead = await self._retrying(partial(self.broker.reap, rk))
                if requeued or dead:
                    self.metrics.reaped.labels(rk).inc(requeued + dead)
                    log.warning(
                        "reaped %d expired lease(s) on %s (%d dead-lettered)",
                        requeued + dead,
                        rk,
                        dead,
                    )
            await asyncio.sleep(REAP_INTERVAL)

    async def maintained_routes(self) -> tuple[str, ...]:
        """Routes whose delayed jobs and leases this process looks after."""
        if self.settings.mode is WorkerMode.SCHEDULER_ONLY:
            return tuple(await self._retrying(self.broker.routes))
        return self.settings.routing_keys

    # -- helpers ------------------------------------------------------------------------------

    def _drain_ready(self) -> list[tuple[str, Leased]]:
        unstarted = []
        while not self._ready.empty():
            item = self._ready.get_nowait()
            if item is None:
                continue
            self._busy -= 1
            if self._held.pop(item[1].id, None) is not None:
                unstarted.append(item)
        if self._busy == 0:
            self._idle.set()
        return unstarted

    async def _release(self, items: list[tuple[str, Leased]]) -> None:
        by_route: dict[str, list[tuple[str, int, Priority]]] = defaultdict(list)
        for rk, leased in items:
            by_route[rk].append((leased.id, leased.attempt, _priority_of(leased)))
        for rk, held in by_route.items():
            with contextlib.suppress(BananasError):
                await self.client._run(self.broker.release(rk, held))

    async def _wait_idle(self, grace: float, hurry: asyncio.Event | None) -> None:
        if self._busy <= 0:
            return
        self._idle.clear()
        if self._busy <= 0:
            return
        waits = [asyncio.ensure_future(self._idle.wait())]
        if hurry is not None:
            waits.append(asyncio.ensure_future(hurry.wait()))
        log.info("worker %s draining %d running job(s), up to %gs", self.id, self._busy, grace)
        await asyncio.wait(waits, timeout=grace, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()

    async def _retrying(self, make: Callable[[], Op[T]], lane: FastLane | None = None) -> T:
        """Run the operation ``make()`` builds; on a failure wait with backoff and rebuild it.

        A worker whose Redis went away keeps trying until it comes back (then resumes on
        its own) instead of stopping silently; /readyz reports false meanwhile.
        """
        pause = RECONNECT_MIN
        while True:
            try:
                result = await (
                    run_async(lane, make(), self.client.target.masked)
                    if lane
                    else self.client._run(make())
                )
            except BananasError as exc:
                raise_if_cancelled()
                if self.redis_ok:
                    log.error("Redis call failed, retrying: %s", exc)
                self.redis_ok = False
                await asyncio.sleep(pause)
                pause = min(pause * 2, RECONNECT_MAX)
                continue
            if not self.redis_ok:
                log.info("Redis is reachable again")
            self.redis_ok = True
            return result


def _priority_of(leased: Leased) -> Priority:
    import orjson

    try:
        return Priority(orjson.loads(leased.record).get("priority", "normal"))
    except (ValueError, AttributeError, orjson.JSONDecodeError):
        return Priority.NORMAL


def _report_crash(task: asyncio.Task[None]) -> None:
    """Log a worker task that ended with an error: /healthz turns false, and this says why."""
    if not task.cancelled() and task.exception() is not None:
        log.error("worker task %s died", task.get_name(), exc_info=task.exception())


async def _service(factory: Callable[[], Awaitable[None]]) -> None:
    await factory()


async def _cancel(task: asyncio.Task[Any] | None) -> None:
    if task is None or task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

"""The worker: a supervisor over the components that serve jobs (seed: ``Pool``).

:class:`Worker` builds the components, starts them, and stops them in order; it
holds no job state of its own. Each component is one module, and they talk
through small methods: the **fetcher** (``fetcher``) leases jobs for free slots
and offers them to the **slots** (``slots``), which run them, report them
finished to the **lease keeper** (``leases``, which also renews, releases and
drains) and hand the outcome to the **acker** (``acker``). The reaper
(``leases``), the promoter (``promoter``), and the cron scheduler and health
server when given, run beside them. Their Redis calls go through one
:class:`~bananas.worker_runtime.retry.RedisCaller` (``/readyz`` reports its state).

Shutdown (``stop``, SIGTERM): stop fetching (a fetch in flight finishes first),
hand unstarted jobs back at once, let running ones finish within the grace
period, cancel what is left, flush the acks (those of jobs that finished during
the drain included), then release the leases still held straight back to the
queue (not after a lease expiry).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from typing import Any

from bananas.client import AsyncClient, Client
from bananas.config import Settings, WorkerMode
from bananas.errors import BananasError
from bananas.eviction import CheckMode, aread_policy, judge
from bananas.models import WorkerInfo, utcnow
from bananas.ops import Op
from bananas.transport import FastLane
from bananas.worker_runtime.acker import Acker
from bananas.worker_runtime.executor import Executor
from bananas.worker_runtime.fetcher import Fetcher
from bananas.worker_runtime.health import HealthServer
from bananas.worker_runtime.leases import Leases, Reaper
from bananas.worker_runtime.loopwatch import LoopWatch
from bananas.worker_runtime.metrics import Metrics
from bananas.worker_runtime.progress import ProgressSender
from bananas.worker_runtime.promoter import Promoter
from bananas.worker_runtime.registry import Registry
from bananas.worker_runtime.retry import RedisCaller
from bananas.worker_runtime.scheduler import CronScheduler
from bananas.worker_runtime.slots import Slots
from bananas.worker_runtime.tasks import LoopThread, Tasks

logger = logging.getLogger(__name__)


class Worker:
    """Runs registered handlers for the jobs of some routing keys.

    Embed it in an async application (``await worker.start()`` ... ``await
    worker.stop()``), in a sync one (``worker.start_in_thread()`` ...
    ``worker.stop_in_thread()``), or run it as a process (``bananas worker``).
    Pass the application's :class:`AsyncClient` as ``client`` to share its connections
    (it is then left open; ``close_client=True`` closes it on stop). ``cron`` and
    ``health`` run with the worker when given (``runner.build_worker`` does).
    """

    def __init__(
        self,
        registry: Registry,
        settings: Settings | None = None,
        *,
        client: AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        worker_id: str | None = None,
        metrics: Metrics | None = None,
        cron: CronScheduler | None = None,
        health: HealthServer | None = None,
        close_client: bool | None = None,
        **overrides: Any,
    ) -> None:
        self.settings = s = (settings or Settings()).with_changes(**overrides)
        s.check()
        self.registry = registry
        self.client = client or worker_client(s, clock)
        self._close_client = client is None if close_client is None else close_client
        self.broker = self.client.broker
        self.clock = clock
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.metrics = metrics or Metrics()
        self.cron = cron
        self.health = health
        self.lease_ms = int(s.lease_duration * 1000)
        self.started_at = utcnow()
        self.fetching = False
        self.redis = RedisCaller(self.client)
        #: The fetcher's calls on their own: when Redis refuses new work (out of memory)
        #: while acks and renewals still go through, the worker is not ready.
        self.fetch_redis = RedisCaller(self.client)
        self._threads = ThreadPoolExecutor(s.concurrency + 4, thread_name_prefix="bananas-handler")
        self.executor = Executor(
            registry,
            job_timeout=s.job_timeout,
            threads=self._threads,
            clock=clock,
            max_result_bytes=s.max_result_bytes,
            backoff_cap=s.retry_backoff_max,
            job_types=s.job_types,
            worker_id=self.id,
        )
        self.leases = Leases(
            self.client, worker_id=self.id, lease_ms=self.lease_ms, concurrency=s.concurrency
        )
        self.metrics.in_flight.set_function(lambda: self.leases.in_flight)
        self.metrics.slots.set(s.concurrency)
        self.acker = Acker(self.broker, self.redis, self.metrics, self.client.workflows)
        self.progress = ProgressSender(self.broker, self.redis)
        self.executor.progress = self.progress.sink
        self.slots = Slots(
            self.executor, self.leases, self.acker, self.metrics, concurrency=s.concurrency
        )
        self.metrics.busy_slots.set_function(lambda: self.slots.busy)
        self.fetcher = Fetcher(
            self.broker,
            self.fetch_redis,
            self.leases,
            self.slots.offer,
            routes=s.routing_keys,
            priorities=s.priorities,
            cluster=self.client.is_cluster,
            metrics=self.metrics,
        )
        self.loopwatch = LoopWatch(
            lease_seconds=s.lease_duration,
            running=self.executor.running_async,
            renew=self._renew_from_thread,
            blocked_gauge=self.metrics.loop_blocked,
            blocks_counter=self.metrics.loop_blocks,
        )
        self._thread_client: Client | None = None
        self._lanes: list[FastLane] = []
        self._tasks = Tasks()
        self._services: list[Callable[[], Awaitable[None]]] = []
        self._stopping = False
        self._stopped = asyncio.Event()
        self._host: LoopThread | None = None
        if cron is not None:
            self.add_service(cron.run)
        if health is not None:
            self.add_service(partial(health.serve, self))

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def serves_jobs(self) -> bool:
        return self.settings.mode is not WorkerMode.SCHEDULER_ONLY

    @property
    def redis_ok(self) -> bool:
        """Did the last Redis call of a worker task succeed?"""
        return self.redis.ok and self.fetch_redis.ok

    @property
    def processed(self) -> int:
        return self.acker.processed

    @property
    def failed(self) -> int:
        return self.acker.failed

    def add_service(self, factory: Callable[[], Awaitable[None]]) -> None:
        """Run another long-lived coroutine (promoter, cron, health server) with the worker."""
        self._services.append(factory)

    async def start(self) -> None:
        """Start serving; returns at once. Raises if Redis cannot be reached, and
        :class:`~bananas.errors.EvictionPolicyError` if Redis may evict queue keys
        (``EVICTION_POLICY_CHECK``, :mod:`bananas.eviction`)."""
        await self.client.ping()
        policy = await aread_policy(self.client.redis)
        judge(policy, self.settings.eviction_policy_check, self.client.target.masked)
        self.redis.ok = self.fetch_redis.ok = True
        if self.serves_jobs:
            self.slots.start(self._tasks.spawn)
            self.acker.start(self._tasks.spawn, self._lane())
            self.progress.start(self._tasks.spawn)
            self.fetcher.start(self._tasks.spawn, self._lane())
            keep = self.leases.keep(self.redis, self._record, self.settings.lease_duration / 3)
            self._tasks.spawn(keep, name="bananas-leases")
            self._tasks.spawn(self.executor.watchdog(), name="bananas-watchdog")
            self._tasks.spawn(self.loopwatch.heartbeat(), name="bananas-loopwatch")
        else:  # a scheduler: no leases to renew, but listed by `bananas workers` all the same
            self._tasks.spawn(
                self._heartbeat(self.settings.lease_duration / 3), name="bananas-beat"
            )
        if self.settings.mode is not WorkerMode.THIN:
            reaper = Reaper(
                self.broker, self.redis, self.maintained_routes, self.metrics, self.client.workflows
            )
            self._tasks.spawn(reaper.run(), name="bananas-reaper")
            promoter = Promoter(
                self.client, self.maintained_routes, interval=self.settings.scheduler_interval
            )
            self._tasks.spawn(promoter.run(), name="bananas-promoter")
        for factory in self._services:
            self._tasks.service(factory)
        self.fetching = self.serves_jobs
        logger.info(
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
        await self.fetcher.stop()
        await self.leases.release(self.leases.give_back(self.slots.take_unstarted()))
        await self.leases.drain(self.settings.shutdown_timeout if grace is None else grace, hurry)
        await self.slots.stop()
        await self.acker.close()
        await self.leases.release_all()
        await self._tasks.cancel_all()
        await self._forget_me()
        await self._close_connections()
        self._stopped.set()
        logger.info(
            "worker %s stopped: processed=%d failed=%d", self.id, self.processed, self.failed
        )

    def start_in_thread(self) -> None:
        """Run the worker on its own event loop in a background thread (sync apps)."""
        self._host = LoopThread("bananas-worker")
        self._host.start(self.start, self._stopped.wait)

    def stop_in_thread(self, grace: float | None = None) -> None:
        """Stop a worker started with :meth:`start_in_thread`; blocks until it has drained."""
        if self._host is not None:
            self._host.finish(self.stop(grace))

    # -- probes -----------------------------------------------------------------------------

    def is_ready(self) -> bool:
        """Redis answered the last call, no internal task has died, and the process is
        fetching (or is a scheduler)."""
        return self.not_ready_reason() is None

    def not_ready_reason(self) -> str | None:
        """Why the worker cannot take work now (``/readyz`` says it), or None."""
        if self._tasks.any_died() and not self._stopping:
            return "an internal task died (see the log)"
        for caller in (self.fetch_redis, self.redis):
            if not caller.ok:
                error = caller.last_error
                return f"Redis call failing: {error}" if error else "Redis not reached yet"
        if not (self.fetching or (not self.serves_jobs and not self._stopping)):
            return "stopping" if self._stopping else "not started"
        return None

    def is_alive(self) -> bool:
        """No internal task has died (the loop itself answered the probe)."""
        return not self._tasks.any_died() or self._stopping

    async def refresh_metrics(self) -> None:
        """Refresh the queue gauges from Redis: one stats call per routing key."""
        for rk in await self.maintained_routes():
            stats = await self.client.run(self.broker.stats(rk))
            counters = await self.client.run(self.broker.counters(rk))
            self.metrics.queue(stats, counters.get("enqueued", 0))

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
            in_flight=self.leases.in_flight,
            processed=self.processed,
            failed=self.failed,
            started_at=self.started_at,
            last_seen=utcnow(),
            mode=s.mode.value,
            cron_leader=self.cron is not None and self.cron.is_leader,
            pod_name=s.pod_name,
            running={
                job_id: datetime.fromtimestamp(at, UTC)
                for job_id, at in self.leases.leased_at().items()
            },
        )

    async def maintained_routes(self) -> tuple[str, ...]:
        """Routes whose delayed jobs and leases this process looks after."""
        if self.settings.mode is WorkerMode.SCHEDULER_ONLY:
            return tuple(await self.redis.call(self.broker.routes))
        return self.settings.routing_keys

    # -- helpers ------------------------------------------------------------------------------

    def _lane(self) -> FastLane | None:
        lane = self.client.dedicated_lane()
        if lane is not None:
            self._lanes.append(lane)
        return lane

    def _renew_from_thread(self) -> None:
        """Renew every held lease on a connection of the watchdog thread's own (the loop
        is blocked, so its pool cannot be used)."""
        if self._thread_client is None:
            s = self.settings
            self._thread_client = Client(
                s.redis_url, prefix=s.prefix, eviction_check=CheckMode.OFF, **s.redis_options
            )
        self._thread_client.run(self.leases.renew())

    def _record(self, ttl_s: float) -> Op[None]:
        return self.broker.heartbeat(self.info(), ttl_s=ttl_s)

    async def _heartbeat(self, interval: float) -> None:
        """Publish this process's record every ``interval`` s (a scheduler's only beat)."""
        while True:
            await self.redis.call(partial(self._record, max(interval * 3, 5.0)))
            await asyncio.sleep(interval)

    async def _forget_me(self) -> None:
        with contextlib.suppress(BananasError):
            await self.client.run(self.broker.forget_worker(self.id))

    async def _close_connections(self) -> None:
        for lane in self._lanes:
            await lane.close()
        self._threads.shutdown(wait=False, cancel_futures=True)
        self.loopwatch.stop()
        if self._thread_client is not None:
            self._thread_client.close()
        if self._close_client:
            await self.client.close()


def worker_client(settings: Settings, clock: Callable[[], float] = time.time) -> AsyncClient:
    """The client a worker opens for itself when it is given none."""
    s = settings
    # The worker judges maxmemory-policy itself at start (and may refuse to run).
    return AsyncClient(
        s.redis_url,
        prefix=s.prefix,
        clock=clock,
        max_retries=s.max_retries,
        eviction_check=CheckMode.OFF,
        **s.redis_options,
    )

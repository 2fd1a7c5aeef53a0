"""Handler-side instrumentation shared by every Python adapter.

Every adapter registers one handler, and that handler calls
:meth:`Probe.handle` (thread-based systems) or :meth:`Probe.ahandle`
(asyncio systems) with the job's payload ``{"i": index, "t": wall time}``,
where ``t`` is the submit time (latency scenarios) or the due time (delayed
jobs). The probe does the work the scenario asks for and measures it:

* start: ``time.time()`` is read first thing; ``start - t`` is kept in a list
  when the report is ``latency``; a ``started`` event is written when it is
  ``each``;
* work: nothing (``noop``), one ``INCR`` on the counter key (``incr``, through
  the probe's own redis-py client, a pool shared by the handler threads or one
  asyncio client), a sleep (``hold``), or ``cpu_loops`` iterations of
  pure-Python arithmetic (``cpu``);
* with ``cpu`` work the job is also counted in Redis (``INCR`` on the counter
  key; the job that makes it 1 writes its wall time to ``<key>:first``, the
  ``expect``-th to ``<key>:last``), because a worker of several processes has no
  single in-process counter: the cpu scenario reads those keys;
* finish: a counter under a lock; the wall times and the process CPU times
  (``time.process_time()``, every thread of the worker process) of the first
  and of the ``expect``-th completion; a ``done`` event at the ``expect``-th.

Nothing per job touches Redis except the ``incr`` work itself, and nothing per
job is written to the event stream unless the report is ``each`` (used only
with a few dozen jobs), so the measurement stays small next to any queue's own
per-job cost: a lock, two clock reads and a list append.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

from bench.protocol import EventStream, WorkerSpec

_current: Probe | None = None


def burn(loops: int) -> int:
    """Pure-Python arithmetic holding the GIL: the ``cpu`` work (about 45 ns a loop)."""
    total = 0
    for i in range(loops):
        total += i * i
    return total


def install(probe: Probe) -> None:
    """Make ``probe`` the one :func:`current` returns in this process."""
    global _current
    _current = probe


def current() -> Probe:
    """Return the installed probe; raises ``RuntimeError`` before :func:`install`."""
    if _current is None:
        raise RuntimeError("no probe installed: handlers run only inside a bench worker")
    return _current


class Probe:
    """Counts, times and reports job executions in one worker process."""

    def __init__(self, spec: WorkerSpec, events: EventStream, versions: dict[str, str]) -> None:
        self.spec = spec
        self._events = events
        self._versions = versions
        self._lock = threading.Lock()
        self._count = 0
        self._first = 0.0
        self._cpu_first = 0.0
        self._latencies: list[float] = []
        self._sync_redis: Any = None
        self._async_redis: Any = None

    def ready(self) -> None:
        """Tell the driver the worker is about to consume."""
        self._events.emit("ready", pid=os.getpid(), versions=self._versions)

    def handle(self, payload: dict[str, Any]) -> bool:
        """Run one job in a thread-based worker; returns True (the job's result)."""
        self._start(payload)
        if self.spec.work == "incr":
            self._sync_client().incr(self.spec.counter_key)
        elif self.spec.work == "hold":
            time.sleep(self.spec.hold_s)
        elif self.spec.work == "cpu":
            burn(self.spec.cpu_loops)
            self._count_shared(self._sync_client().incr(self.spec.counter_key))
        self._finish(payload)
        return True

    async def ahandle(self, payload: dict[str, Any]) -> bool:
        """Run one job in an asyncio worker; returns True (the job's result)."""
        self._start(payload)
        if self.spec.work == "incr":
            await self._async_client().incr(self.spec.counter_key)
        elif self.spec.work == "hold":
            await asyncio.sleep(self.spec.hold_s)
        elif self.spec.work == "cpu":
            burn(self.spec.cpu_loops)
            self._count_shared(await self._async_client().incr(self.spec.counter_key))
        self._finish(payload)
        return True

    def _count_shared(self, count: int) -> None:
        """Record the group's first and ``expect``-th completion times in Redis."""
        key = self.spec.counter_key
        if count == 1:
            self._sync_client().set(f"{key}:first", repr(time.time()))
        if count == self.spec.expect:
            self._sync_client().set(f"{key}:last", repr(time.time()))

    def _start(self, payload: dict[str, Any]) -> None:
        now = time.time()
        report = self.spec.report
        if report == "latency":
            with self._lock:
                self._latencies.append(now - float(payload["t"]))
        elif report == "each":
            self._events.emit("started", i=payload["i"], t=now)

    def _finish(self, payload: dict[str, Any]) -> None:
        now = time.time()
        if self.spec.report == "each":
            self._events.emit("completed", i=payload["i"], t=now)
        with self._lock:
            self._count += 1
            count = self._count
            if count == 1:
                self._first = now
                self._cpu_first = time.process_time()
            latencies = self._latencies if count == self.spec.expect else None
        every = self.spec.progress_every
        if every and count % every == 0:
            self._events.emit("progress", count=count)
        if latencies is not None:
            self._events.emit(
                "done",
                count=count,
                first=self._first,
                last=now,
                cpu_first=self._cpu_first,
                cpu_last=time.process_time(),
                latencies=[round(x, 7) for x in latencies],
            )

    def _sync_client(self) -> Any:
        if self._sync_redis is None:
            import redis

            with self._lock:
                if self._sync_redis is None:
                    self._sync_redis = redis.Redis.from_url(self.spec.url)
        return self._sync_redis

    def _async_client(self) -> Any:
        if self._async_redis is None:
            import redis.asyncio

            self._async_redis = redis.asyncio.Redis.from_url(self.spec.url)
        return self._async_redis

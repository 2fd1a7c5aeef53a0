"""Dramatiq adapter: ``RedisBroker`` and a ``Worker`` with 10 threads.

The worker runs in this process (``dramatiq.Worker(broker, worker_threads=10)``),
as one of the processes ``dramatiq`` would fork; the consumer thread prefetches
messages for the worker threads. ``max_retries=0`` so that a failure is never
hidden by a retry. The Results middleware (Redis backend) is added only when
the spec asks for results; delayed jobs use ``send_with_options(delay=ms)``,
which parks the message on the delay queue until the worker moves it. The
Redis broker keeps an acknowledgement set and a heartbeat per worker: messages
of a worker silent for ``heartbeat_timeout`` (60 s) are requeued by another
worker's maintenance pass, which runs on a random 1 in 1,000 broker commands
(``maintenance_chance``): on a quiet queue that can take many minutes.

With ``processes`` > 1 (the cpu scenario) this process forks that many worker
processes, each with its own broker and ``Worker`` of ``concurrency`` threads, as
``dramatiq --processes N`` runs them, and sends the ready event once all are
consuming.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

from bench.protocol import ClientSpec, WorkerSpec
from bench.systems import _probe
from bench.systems._client import Client, Payload

PACKAGES = ("dramatiq", "redis", "hiredis")


def _setup(url: str, queue: str, results: bool) -> tuple[RedisBroker, Any]:
    broker = RedisBroker(url=url)
    if results:
        broker.add_middleware(Results(backend=RedisBackend(url=url)))
    dramatiq.set_broker(broker)
    options: dict[str, Any] = {"store_results": True} if results else {}

    @dramatiq.actor(actor_name="bench_job", queue_name=queue, max_retries=0, **options)
    def job(payload: Payload) -> bool | None:
        done = _probe.current().handle(payload)
        # Without the Results middleware Dramatiq logs a warning for every job
        # that returns a value, which would be measured as Dramatiq's cost.
        return done if results else None

    return broker, job


def _consume(spec: WorkerSpec, on_ready: Any) -> None:
    """Run one worker process's threads until SIGTERM or SIGINT."""
    broker, _ = _setup(spec.url, spec.queue, spec.results)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    worker = dramatiq.Worker(broker, worker_threads=spec.concurrency)
    worker.start()
    on_ready()
    while not stop.wait(1.0):
        pass
    worker.stop(timeout=2000)
    broker.close()


def _forked(spec: WorkerSpec, ready: Any) -> None:
    _consume(spec, ready.release)


def run_worker(spec: WorkerSpec, probe: _probe.Probe) -> None:
    """Run the worker threads (in ``processes`` processes) until SIGTERM or SIGINT."""
    if spec.processes <= 1:
        _consume(spec, probe.ready)
        return
    context = multiprocessing.get_context("fork")
    ready = context.Semaphore(0)
    children = [context.Process(target=_forked, args=(spec, ready)) for _ in range(spec.processes)]
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    for child in children:
        child.start()
    for _ in children:
        ready.acquire()
    probe.ready()
    while not stop.wait(1.0):
        pass
    for child in children:
        if child.pid is not None:
            os.kill(child.pid, signal.SIGTERM)
    for child in children:
        child.join(10)


class DramatiqClient(Client):
    def __init__(self, spec: ClientSpec) -> None:
        self._broker, self._job = _setup(spec.url, spec.queue, spec.results)

    async def submit(self, payload: Payload) -> None:
        self._job.send(payload)

    async def submit_at(self, payload: Payload, due: float) -> None:
        delay_ms = max(0, round((due - time.time()) * 1000))
        self._job.send_with_options(args=(payload,), delay=delay_ms)

    async def submit_and_wait(self, payload: Payload, timeout: float) -> None:
        self._job.send(payload).get_result(block=True, timeout=round(timeout * 1000))

    async def close(self) -> None:
        self._broker.close()


def make_client(spec: ClientSpec) -> Client:
    """Return a client bound to the spec's Redis."""
    return DramatiqClient(spec)

"""Celery adapter: a worker with the threads pool, 10 threads, Redis broker.

The worker runs in this process through ``app.worker_main`` with the same
arguments as ``celery worker --pool=threads -c 10``; mingle, gossip and
heartbeat are off (they only talk to other workers). ``task_acks_late`` is on
so that a job is acknowledged after it ran, Celery's at-least-once setting;
with the Redis transport, unacknowledged messages come back only after the
visibility timeout (one hour by default). Results go to a Redis backend only
when the spec asks for them; delayed jobs use ``apply_async(eta=...)``, which
the worker holds in memory until due. The ready event is sent from Celery's
``worker_ready`` signal. With ``processes`` > 1 (the cpu scenario) the pool is
prefork with that many child processes (``celery worker --pool=prefork -c N``),
Celery's own answer to CPU-bound tasks. The workflow scenario's chain is
``chain(job.s(), step.s(), ...)`` (each step receives the previous result) and its
chord is ``chord(group(job.s() ...))(collect.s())`` on the Redis result backend,
which Celery's chords need; both are waited for with ``.get()``.
"""

from __future__ import annotations

import datetime
from typing import Any

from celery import Celery, chain, chord, group
from celery.signals import worker_ready

from bench.protocol import ClientSpec, WorkerSpec
from bench.systems import _probe
from bench.systems._client import Client, Payload

PACKAGES = ("celery", "kombu", "redis", "hiredis")


def _app(url: str, queue: str, results: bool) -> tuple[Celery, Any]:
    app = Celery("bench", broker=url, backend=url if results else None)
    app.conf.update(
        task_acks_late=True,
        task_ignore_result=not results,
        task_default_queue=queue,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )

    @app.task(name="bench.job")
    def job(payload: Payload) -> bool:
        return _probe.current().handle(payload)

    @app.task(name="bench.step")
    def step(previous: Any, payload: Payload) -> bool:
        """A chain step: Celery passes the previous step's result first."""
        return _probe.current().handle(payload)

    @app.task(name="bench.collect")
    def collect(results: list[Any], payload: Payload) -> bool:
        """A chord callback: Celery passes the list of member results first."""
        return _probe.current().handle(payload)

    app.bench_step, app.bench_collect = step, collect  # type: ignore[attr-defined]
    return app, job


def run_worker(spec: WorkerSpec, probe: _probe.Probe) -> None:
    """Run the worker until SIGTERM (Celery's warm shutdown)."""
    app, _ = _app(spec.url, spec.queue, spec.results)

    def on_ready(**_: Any) -> None:
        probe.ready()

    worker_ready.connect(on_ready, weak=False)
    app.worker_main(
        argv=[
            "worker",
            *(
                ["--pool=threads", f"--concurrency={spec.concurrency}"]
                if spec.processes <= 1
                else ["--pool=prefork", f"--concurrency={spec.processes}"]
            ),
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            "--loglevel=WARNING",
            f"--queues={spec.queue}",
        ]
    )


class CeleryClient(Client):
    def __init__(self, spec: ClientSpec) -> None:
        self._app, self._job = _app(spec.url, spec.queue, spec.results)

    async def submit(self, payload: Payload) -> None:
        self._job.apply_async(args=(payload,))

    async def submit_at(self, payload: Payload, due: float) -> None:
        eta = datetime.datetime.fromtimestamp(due, tz=datetime.UTC)
        self._job.apply_async(args=(payload,), eta=eta)

    async def submit_and_wait(self, payload: Payload, timeout: float) -> None:
        self._job.apply_async(args=(payload,)).get(timeout=timeout)

    async def run_chain(self, steps: list[Payload], timeout: float) -> None:
        first, *rest = steps
        step = self._app.bench_step  # type: ignore[attr-defined]
        wf = chain(self._job.s(first), *(step.s(p) for p in rest))
        wf.apply_async().get(timeout=timeout)

    async def run_chord(self, members: list[Payload], timeout: float) -> None:
        callback = self._app.bench_collect.s({"i": -100, "t": 0.0})  # type: ignore[attr-defined]
        chord(group(self._job.s(p) for p in members))(callback).get(timeout=timeout)

    async def close(self) -> None:
        self._app.close()


def make_client(spec: ClientSpec) -> Client:
    """Return a client bound to the spec's Redis."""
    return CeleryClient(spec)

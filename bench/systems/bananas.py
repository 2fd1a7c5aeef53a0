"""Bananas adapter: the project's own ``Worker`` and ``AsyncClient``.

The worker is built with ``bananas.worker_runtime.build_worker`` (so it has the
promoter that moves due delayed jobs, as ``bananas worker`` has) and run in
this process's event loop, with concurrency 10 on the routing key ``bench``;
the metrics server and the cron scheduler are off (neither is on a job's
path). The handler is an ``async def``, so it runs on the loop, not in the
handler thread pool. Results are kept for an hour only when the spec asks for
them; otherwise ``success_ttl=0``, with which Bananas keeps a result only for
the few seconds a waiter needs to read it. Bulk submission is
``submit_many`` (one script call per 500 jobs); delayed jobs use
``scheduled_for``; a round trip is ``submit_and_wait``; the workflow scenario's
chain and chord are ``submit_workflow_and_wait`` of ``chain`` / ``chord`` of
no-op steps (each step gets the previous results in ``job.parent_results``). The
flow scenarios submit with ``group=`` and store limits with ``set_limit`` (on the
job name, ``name:bench_job``, for the limited drain). A killed worker's
leases expire after ``lease_duration`` (10 s) and another worker's reaper
returns them to the queue.

With ``processes`` > 1 (the cpu scenario) this process runs what ``bananas worker
--processes N`` runs: the supervisor (``bananas.worker_runtime.supervisor``),
whose children are ``bananas worker`` processes loading :data:`registry` from
this module; each child builds its probe from the spec in ``BENCH_WORKER_SPEC``.
The ready event is sent once the supervisor reports every child ready.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import os
import signal
import sys

from bananas import AsyncClient, Job, JobSpec, WorkflowStatus, chain, chord, group, task
from bananas.worker_runtime import Registry, Settings, build_worker
from bench.protocol import ClientSpec, EventStream, WorkerSpec, decode_worker_spec, encode_spec
from bench.systems import _probe
from bench.systems._client import Client, Payload

PACKAGES = ("bananas", "redis", "hiredis")

JOB_NAME = "bench_job"
RESULT_TTL_KEPT = 3600.0
"""Bananas' default ``success_ttl``, used when results are wanted."""
STOP_GRACE_S = 2.0
SPEC_VAR = "BENCH_WORKER_SPEC"
"""The spec a supervised child builds its probe from."""
READY_POLL_S = 0.05


def _probe_here() -> _probe.Probe:
    """The installed probe, or (in a supervised child) one built from the spec."""
    try:
        return _probe.current()
    except RuntimeError:
        spec = decode_worker_spec(os.environ[SPEC_VAR])
        probe = _probe.Probe(spec, EventStream(sys.stderr), {})
        _probe.install(probe)
        return probe


def _registry() -> Registry:
    registry = Registry()

    @registry.handler(JOB_NAME)
    async def job(job: Job) -> bool:
        return await _probe_here().ahandle(job.payload)

    return registry


registry = _registry()
"""What a supervised child (``bananas worker``) loads: ``BANANAS_APP=bench.systems.bananas``."""


def _settings(spec: WorkerSpec) -> Settings:
    return Settings(
        redis_url=spec.url,
        concurrency=spec.concurrency,
        routing_keys=(spec.queue,),
        metrics_port=0,
        enable_scheduler=False,
        log_level="WARNING",
    )


async def _supervise(spec: WorkerSpec, probe: _probe.Probe) -> None:
    from bananas.worker_runtime.supervisor import Supervisor

    os.environ[SPEC_VAR] = encode_spec(dataclasses.replace(spec, processes=1))
    settings = dataclasses.replace(_settings(spec), processes=spec.processes, app=__name__)
    supervisor = Supervisor(settings)
    running = asyncio.get_running_loop().create_task(supervisor.run())
    while not await supervisor.is_ready():
        if running.done():
            await running  # it ended before it was ready: its error, or its return
            return
        await asyncio.sleep(READY_POLL_S)
    probe.ready()
    await running


async def _serve(spec: WorkerSpec, probe: _probe.Probe) -> None:
    worker = build_worker(_registry(), _settings(spec))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await worker.start()
    probe.ready()
    await stop.wait()
    await worker.stop(grace=STOP_GRACE_S)


def run_worker(spec: WorkerSpec, probe: _probe.Probe) -> None:
    """Run the worker (or, with several processes, the supervisor) until SIGTERM."""
    asyncio.run(_supervise(spec, probe) if spec.processes > 1 else _serve(spec, probe))


class BananasClient(Client):
    bulk = True

    def __init__(self, spec: ClientSpec) -> None:
        ttl = RESULT_TTL_KEPT if spec.results else 0.0
        self._client = AsyncClient(spec.url, success_ttl=ttl)
        self._route = spec.queue
        self._group: str | None = None

    def in_group(self, group: str) -> None:
        self._group = group or None

    async def submit(self, payload: Payload) -> None:
        await self._client.submit(JOB_NAME, payload, routing_key=self._route, group=self._group)

    async def submit_many(self, payloads: list[Payload]) -> None:
        await self._client.submit_many(
            [JobSpec(JOB_NAME, p, routing_key=self._route, group=self._group) for p in payloads]
        )

    async def set_limit(self, key: str, rate: str) -> None:
        await self._client.set_limit(key, rate=rate, routing_key=self._route)

    async def submit_at(self, payload: Payload, due: float) -> None:
        when = datetime.datetime.fromtimestamp(due, tz=datetime.UTC)
        await self._client.submit(JOB_NAME, payload, routing_key=self._route, scheduled_for=when)

    async def submit_and_wait(self, payload: Payload, timeout: float) -> None:
        await self._client.submit_and_wait(
            JOB_NAME, payload, timeout=timeout, routing_key=self._route
        )

    async def run_chain(self, steps: list[Payload], timeout: float) -> None:
        wf = chain(task(JOB_NAME, p, routing_key=self._route) for p in steps)
        await self._finish(await self._client.submit_workflow_and_wait(wf, timeout))

    async def run_chord(self, members: list[Payload], timeout: float) -> None:
        wf = chord(
            group(task(JOB_NAME, p, routing_key=self._route) for p in members),
            task(JOB_NAME, {"i": -100, "t": 0.0}, routing_key=self._route),
        )
        await self._finish(await self._client.submit_workflow_and_wait(wf, timeout))

    async def _finish(self, info: object) -> None:
        status = getattr(info, "status", None)
        if status is not WorkflowStatus.COMPLETED:
            raise RuntimeError(f"workflow ended {status}")

    async def close(self) -> None:
        await self._client.close()


def make_client(spec: ClientSpec) -> Client:
    """Return a client bound to the spec's Redis."""
    return BananasClient(spec)

"""Assembles a worker or scheduler process from settings, and runs it under signals.

``build_worker`` builds the cron scheduler under leader election
(``ENABLE_SCHEDULER``, except in ``thin``; always in ``scheduler-only``) and the
health/metrics server (``METRICS_PORT`` other than 0), sharing one client and one
metrics registry, and passes them to a :class:`Worker` (which promotes delayed
jobs itself in every mode but ``thin``).
``serve`` runs it until SIGTERM/SIGINT: the first signal starts the drain, a second
one ends the grace period at once. The process then exits 0.

Under a supervisor (``supervisor.py``) ``serve`` also takes the process's
:class:`~bananas.worker_runtime.child.ChildLink`: it reports its private metrics
port, drains when a recycling limit is reached or the supervisor goes away, and
sends its last metrics before it returns.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable

from prometheus_client import generate_latest

from bananas.client import AsyncClient
from bananas.config import Settings, WorkerMode
from bananas.errors import ConfigError
from bananas.worker_runtime.child import ChildLink, Recycler
from bananas.worker_runtime.health import HealthServer
from bananas.worker_runtime.leader import LeaderElector, RedisLeaderElector
from bananas.worker_runtime.metrics import Metrics
from bananas.worker_runtime.registry import Registry
from bananas.worker_runtime.scheduler import CronScheduler
from bananas.worker_runtime.worker import Worker, worker_client

logger = logging.getLogger(__name__)


def load_registry(app: str) -> Registry:
    """Import ``module`` or ``module:attribute`` and return its :class:`Registry`.

    With no attribute, the module's ``registry`` is used, else its only Registry.
    Raises :class:`ConfigError` with what was looked for.
    """
    if not app:
        raise ConfigError("no handler module given: set BANANAS_APP or pass --app module:registry")
    module_name, _, attr = app.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like celery and rq: the app lives where you run it
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import handler module {module_name!r}: {exc}") from None
    except Exception as exc:  # a syntax error or a crash in the module's own code: exit 2
        raise ConfigError(
            f"cannot import handler module {module_name!r}: {type(exc).__name__}: {exc}"
        ) from None
    if attr:
        found = getattr(module, attr, None)
    else:
        found = getattr(module, "registry", None)
        if not isinstance(found, Registry):
            candidates = [v for v in vars(module).values() if isinstance(v, Registry)]
            found = candidates[0] if len(candidates) == 1 else None
    if not isinstance(found, Registry):
        raise ConfigError(
            f"{app!r} does not name a bananas Registry (use module:attribute to pick one)"
        )
    return found


def make_elector(settings: Settings, client: AsyncClient, identity: str) -> LeaderElector:
    """The leader elector ``LEADER_ELECTION`` asks for."""
    lease = max(settings.lease_duration, 3.0)
    if settings.leader_election == "kubernetes":
        from bananas.worker_runtime.leader_kubernetes import KubernetesLeaseElector

        namespace = os.environ.get("POD_NAMESPACE", "default")
        return KubernetesLeaseElector(
            namespace=namespace,
            name=settings.leader_lease_name,
            identity=identity,
            lease_duration=lease,
        )
    return RedisLeaderElector(client, settings.leader_lease_name, identity, lease)


def build_worker(
    registry: Registry,
    settings: Settings,
    *,
    client: AsyncClient | None = None,
    clock: Callable[[], float] = time.time,
    metrics_host: str = "0.0.0.0",
    metrics_port: int | None = None,
) -> Worker:
    """A worker with the services its mode calls for (see the module docstring).

    ``metrics_port`` overrides ``METRICS_PORT`` (0 here: any free port, not off), as a
    supervised child's private server needs.
    """
    wclient = client or worker_client(settings, clock)
    metrics = Metrics()
    cron = None
    thin = settings.mode is WorkerMode.THIN
    if (settings.enable_scheduler and not thin) or settings.mode is WorkerMode.SCHEDULER_ONLY:
        identity = os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
        cron = CronScheduler(
            wclient,
            make_elector(settings, wclient, identity),
            schedules=registry.schedules,
            interval=settings.scheduler_interval,
            clock=clock,
            metrics=metrics,
        )
    health = None
    if settings.metrics_port or metrics_port is not None:
        port = settings.metrics_port if metrics_port is None else metrics_port
        health = HealthServer(metrics, host=metrics_host, port=port)
    return Worker(
        registry,
        settings,
        client=wclient,
        close_client=client is None,
        clock=clock,
        metrics=metrics,
        cron=cron,
        health=health,
    )


async def serve(worker: Worker, link: ChildLink | None = None) -> None:
    """Run ``worker`` until SIGTERM/SIGINT (or, supervised, a recycle), drain, and return."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    hurry = asyncio.Event()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            logger.warning("second %s: ending the grace period now", signal.Signals(signum).name)
            hurry.set()
        else:
            logger.info(
                "%s: draining (up to %gs; send it again to hurry)",
                signal.Signals(signum).name,
                worker.settings.shutdown_timeout,
            )
            stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    watchers: list[asyncio.Task[None]] = []
    recycled: list[str] = []
    try:
        if link is not None:
            watchers = await _supervised(worker, link, stop, recycled)
        await worker.start()
        if link is not None and worker.health is not None:
            await link.send("ready", port=worker.health.port)
        await stop.wait()
        await worker.stop(hurry=hurry)
    finally:
        for task in watchers:
            task.cancel()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        if link is not None:
            text = generate_latest(worker.metrics.registry).decode()
            await link.send("final", metrics=text, recycled=recycled[0] if recycled else None)
            await link.close()


async def _supervised(
    worker: Worker, link: ChildLink, stop: asyncio.Event, recycling: list[str]
) -> list[asyncio.Task[None]]:
    """Open the link, bind the private port, arm recycling; returns the watcher tasks.

    A recycle appends its reason to ``recycling`` and sets ``stop``.
    """
    await link.open()
    if worker.health is not None:
        await worker.health.start(worker)  # bound now, so "ready" can name the port
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []

    def recycle(reason: str) -> None:
        if stop.is_set() or recycling:
            return
        recycling.append(reason)
        logger.info("recycling this worker process: %s; draining", reason)
        # Tell the supervisor first, so that it starts the replacement during the drain.
        tasks.append(loop.create_task(link.send("recycling", reason=reason)))
        stop.set()

    async def orphaned() -> None:
        await link.parent_gone()
        if not stop.is_set():
            logger.warning("the supervisor went away: draining")
            stop.set()

    settings = worker.settings
    recycler = Recycler(worker.metrics, settings.max_jobs_per_child, settings.max_memory_per_child)
    recycler.watch(recycle)
    tasks.append(loop.create_task(orphaned(), name="bananas-link"))
    tasks.append(loop.create_task(recycler.watch_memory(recycle), name="bananas-recycler"))
    return tasks

"""Running the operator: in this process's event loop, or as the container's main.

:func:`run_operator` is the whole operator as one coroutine: it makes the
:class:`~bananas.operator.context.OperatorContext`, runs kopf with the
operator's registry and settings until ``stop_flag`` is set (or the process
gets SIGTERM), and closes the clients. The end-to-end tests run it in a thread
against a throw-away API server; the container runs :func:`main`. With leader
election on, kopf runs only while this replica holds the operator's Lease, and
the loop of standing by and leading is here (:func:`_run_elected`).

:func:`main` (``python -m bananas.operator``) reads :class:`OperatorConfig`
from the environment, sets up logging (kopf's JSON format when
``LOG_FORMAT=json``), serves the Prometheus metrics, and starts kopf with its
liveness endpoint (the ``--liveness`` of the kopf CLI) for the Deployment's
probes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import kopf
from kubernetes_asyncio import client as k8s

from bananas.errors import BananasError
from bananas.kubelease import KubernetesLeaseElector
from bananas.operator.config import OperatorConfig
from bananas.operator.context import OperatorContext
from bananas.operator.deployment_cache import stop as stop_watching
from bananas.operator.kopf_wiring import build_registry, make_settings
from bananas.operator.leadership import (
    ElectorFactory,
    End,
    Leadership,
    Stopping,
    flag_is_set,
    identity_of,
    keep_on_own_thread,
    standby_liveness,
    wait_event,
)

logger = logging.getLogger(__name__)

#: Seconds the operator gives its closed connections to finish closing at exit.
CLOSE_GRACE = 2.0
#: Seconds between two returns of the allocator's free memory to the system.
TRIM_SECONDS = 60.0


async def run_operator(
    config: OperatorConfig,
    *,
    context: OperatorContext | None = None,
    stop_flag: Any = None,
    ready_flag: Any = None,
    liveness_endpoint: str | None = None,
) -> None:
    """Run the operator until ``stop_flag`` (an asyncio/threading Event or Future) is set.

    Watches ``config.namespaces``, or the whole cluster when there are none, and keeps
    the operator's Deployments in memory from a watch of their own
    (:mod:`~bananas.operator.deployment_cache`).
    With ``config.leader_election.enabled``, kopf runs only while this replica
    holds the Lease (:mod:`~bananas.operator.leadership`); ``ready_flag`` is set
    when kopf is ready, so not while standing by.
    Raises :class:`~bananas.operator.kube.KubernetesApiError` without credentials.
    """
    ctx = context or await OperatorContext.create(config)
    # The Deployment watch runs on a standby replica too, so a new leader starts warm.
    watching = (
        asyncio.create_task(ctx.deployments.run(), name="deployments")
        if (ctx.deployments is not None)
        else None
    )
    trimming = asyncio.create_task(trim_memory(TRIM_SECONDS), name="trim-memory")
    try:
        if config.leader_election.enabled:
            await _run_elected(config, ctx, stop_flag, ready_flag, liveness_endpoint)
        else:
            await _run_kopf(config, ctx, stop_flag, ready_flag, liveness_endpoint)
    finally:
        trimming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await trimming
        if watching is not None:
            await stop_watching(watching)
        await ctx.close()
        await settle_connections()


async def trim_memory(every: float) -> None:
    """Every ``every`` seconds, give the allocator's free pages back to the system.

    A start-up or failover resumes thousands of resources at once; the bodies, replies
    and parsed JSON of that burst are freed afterwards, but glibc keeps the pages in
    its arenas, so the resident size stayed at the burst's peak. ``malloc_trim(0)``
    returns every free page (not only the top of the heap). Elsewhere than glibc
    (musl, macOS) this does nothing.
    """
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is None:
        return
    while True:
        await asyncio.sleep(every)
        trim(0)


async def settle_connections(timeout: float = CLOSE_GRACE) -> None:
    """Wait (at most ``timeout`` s) until this loop's sockets have finished closing.

    A TLS connection closes in two steps: the close_notify goes out at once, the socket
    closes when the API server answers it. kopf closes its watch streams without waiting
    for the second step, so a loop that ended right after kopf would leave those sockets
    open (half-closed at the API server; a ResourceWarning where the loop ran in a test).
    Every client is closed by now, so any socket still open is one of those.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while open_transports() and loop.time() < deadline:
        await asyncio.sleep(0.01)
    if open_transports():
        logger.debug("connections still open at exit after %.1fs", timeout)


def open_transports() -> list[asyncio.BaseTransport]:
    """This event loop's socket transports that are neither closed nor closing ([] for a
    loop that does not list them: only selector loops keep them, by file descriptor)."""
    transports = getattr(asyncio.get_running_loop(), "_transports", None)
    if not transports:
        return []
    return [t for t in list(transports.values()) if t is not None and not t.is_closing()]


async def _run_kopf(
    config: OperatorConfig,
    ctx: OperatorContext,
    stop_flag: Any,
    ready_flag: Any,
    liveness_endpoint: str | None,
) -> None:
    await kopf.operator(
        registry=build_registry(config),
        settings=make_settings(),
        memo=kopf.Memo(ctx=ctx),
        standalone=True,
        clusterwide=not config.namespaces,
        namespaces=list(config.namespaces),
        liveness_endpoint=liveness_endpoint,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )


async def _run_elected(
    config: OperatorConfig,
    ctx: OperatorContext,
    stop_flag: Any,
    ready_flag: Any,
    liveness_endpoint: str | None,
) -> None:
    """Stand by until leading, run kopf while leading, stand by again if the Lease is lost.

    A stop (``stop_flag``, SIGTERM or SIGINT) is noticed within one retry period.
    """
    settings = config.leader_election
    # The Lease goes over a connection pool of its own: a flood of reconcile requests
    # on the operator's pool (1,000 pools at start-up) must never delay a renewal. While
    # leading, renewals run on a thread of their own too (keep_on_own_thread).
    lease_api = k8s.ApiClient(ctx.kube.api.configuration)
    leadership = Leadership(
        lease_elector(config, lease_api), settings, on_change=ctx.metrics.leader.set
    )
    configuration = ctx.kube.api.configuration

    def own_elector() -> tuple[KubernetesLeaseElector, Callable[[], Awaitable[None]]]:
        api = k8s.ApiClient(configuration)  # made on, and used by, the renewing thread

        async def close() -> None:
            await api.close()
            await settle_connections()  # that thread's loop ends next

        return lease_elector(config, api), close

    signalled = asyncio.Event()

    async def stopping(timeout: float) -> bool:
        return await wait_event(signalled, timeout) or flag_is_set(stop_flag)

    try:
        while True:
            _on_signals(signalled.set)
            async with standby_liveness(liveness_endpoint):
                if not await leadership.acquire(stopping):
                    return
            if await _lead(
                config, ctx, leadership, own_elector, stopping, ready_flag, liveness_endpoint
            ):
                return
            logger.warning("standing by: another replica may hold the lease now")
    finally:
        await leadership.elector.release()
        await lease_api.close()


def lease_elector(config: OperatorConfig, api: k8s.ApiClient) -> KubernetesLeaseElector:
    """The operator's Lease elector over ``api``."""
    settings = config.leader_election
    return KubernetesLeaseElector(
        settings.namespace,
        settings.name,
        identity_of(settings),
        settings.lease_duration,
        api_client=api,
    )


async def _lead(
    config: OperatorConfig,
    ctx: OperatorContext,
    leadership: Leadership,
    own_elector: ElectorFactory,
    stopping: Stopping,
    ready_flag: Any,
    liveness_endpoint: str | None,
) -> bool:
    """One term: kopf runs until the Lease is lost (False) or the operator stops (True)."""
    kopf_stop = asyncio.Event()
    operator = asyncio.create_task(
        _run_kopf(config, ctx, kopf_stop, ready_flag, liveness_endpoint), name="kopf"
    )
    keeper = asyncio.create_task(
        keep_on_own_thread(leadership, stopping, own_elector), name="leadership"
    )
    try:
        await asyncio.wait({operator, keeper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        kopf_stop.set()
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        lost_lease = keeper.done() and not keeper.cancelled() and keeper.result() is End.LOST
        try:
            await operator  # kopf stopped by itself (a signal it caught) ends the operator
        except Exception:
            if not lost_lease:
                raise
            # kopf stopped mid-flight can re-raise what a task cancelled at that moment
            # raised; the term is over either way, and the replica stands by again.
            logger.warning("kopf ended with an error after the lease was lost", exc_info=True)
    return not lost_lease


def _on_signals(callback: Callable[[], None]) -> None:
    """Make SIGTERM and SIGINT call ``callback`` (kopf takes them over while it runs)."""
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, callback)


def main(argv: Sequence[str] | None = None) -> int:
    """The operator container's entry point; returns the exit code."""
    del argv  # configured by the environment only
    try:
        config = OperatorConfig.from_env()
    except BananasError as exc:
        print(f"bananas-operator: {exc}", file=sys.stderr)
        return 2
    json_logs = os.environ.get("LOG_FORMAT", "").lower() == "json"
    kopf.configure(
        verbose=os.environ.get("LOG_LEVEL", "").upper() == "DEBUG",
        log_format=kopf.LogFormat.JSON if json_logs else kopf.LogFormat.FULL,
    )
    try:
        asyncio.run(_serve(config))
    except BananasError as exc:
        logger.error("bananas-operator stopped: %s", exc)
        return 1
    return 0


async def _serve(config: OperatorConfig) -> None:
    ctx = await OperatorContext.create(config)
    if config.metrics_port:
        ctx.metrics.serve(config.metrics_port)
        logger.info("serving metrics on :%d", config.metrics_port)
    await run_operator(config, context=ctx, liveness_endpoint=config.liveness_endpoint or None)

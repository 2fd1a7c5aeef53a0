"""One active operator among several replicas: leadership through a Lease.

kopf's peering is not leader election (it pauses operators that see a peer of
higher priority, without fencing and with no deadline a standby can count on),
so the operator runs standalone and elects its leader itself, with the
``coordination.k8s.io/v1`` Lease elector the scheduler uses
(:class:`bananas.kubelease.KubernetesLeaseElector`). A replica that does not
hold the Lease runs **no part of kopf**: no watch, no handler, no autoscaler
poll; it only tries the Lease every ``retry_period``.

:class:`Leadership` holds the two loops of a replica's life:

- :meth:`~Leadership.acquire`: try every ``retry_period`` until the Lease is
  ours (a standby takes it over once it is ``lease_duration`` old, or at once
  when the old leader released it on shutdown).
- :meth:`~Leadership.keep`: renew every ``retry_period`` while kopf runs (on a
  thread of its own: :func:`keep_on_own_thread`); when
  no renewal succeeded for ``renew_deadline`` (shorter than the lease
  duration) the Lease counts as lost and the caller stops kopf, before a
  standby may take it over. :func:`lost` is that rule as a pure function.

A replica that lost the Lease goes back to standing by; on shutdown the leader
releases the Lease so a standby takes over within one ``retry_period``.

The standby still answers the liveness probe (kopf's endpoint is only up while
kopf runs): :func:`standby_liveness` serves the same address meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Future as ConcurrentFuture
from typing import Any, Protocol
from urllib.parse import urlsplit

from aiohttp import web

from bananas.operator.config import LeaderElectionSettings

logger = logging.getLogger(__name__)


class Elector(Protocol):
    """What :class:`Leadership` needs of a Lease elector (``KubernetesLeaseElector``)."""

    async def acquire_or_renew(self) -> int | None:
        """The fencing token while leading, else None; never raises."""

    async def release(self) -> None:
        """Give the Lease up if this replica holds it; never raises."""


class End(enum.Enum):
    """Why a term of leadership ended."""

    STOPPED = "stopped"  # the operator is shutting down
    LOST = "lost"  # no renewal within the renew deadline


def lost(last_renewal: float, now: float, renew_deadline: float) -> bool:
    """True when the last successful renewal is more than ``renew_deadline`` old."""
    return now - last_renewal > renew_deadline


def identity_of(settings: LeaderElectionSettings) -> str:
    """The Lease holder name of this replica: POD_NAME, else host name and pid."""
    return settings.identity or f"{socket.gethostname()}-{os.getpid()}"


#: "Has the operator been asked to stop?", waiting at most the given seconds for it.
Stopping = Callable[[float], Awaitable[bool]]


class Leadership:
    """Acquire and keep the operator's Lease (see the module docstring)."""

    def __init__(
        self,
        elector: Elector,
        settings: LeaderElectionSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.elector = elector
        self.settings = settings
        self._clock = clock
        self._on_change = on_change or (lambda _leading: None)
        #: The fencing token of the current term (None while standing by).
        self.token: int | None = None

    async def acquire(self, stopping: Stopping) -> bool:
        """Try the Lease until it is ours (True) or the operator stops first (False)."""
        while True:
            token = await self.elector.acquire_or_renew()
            if token is not None:
                self.token = token
                self._on_change(True)
                logger.info("leading (lease token %d)", token)
                return True
            if await stopping(self.settings.retry_period):
                return False

    async def keep(self, stopping: Stopping) -> End:
        """Renew until the operator stops (:attr:`End.STOPPED`) or the Lease is lost."""
        last_renewal = self._clock()
        try:
            while True:
                if await stopping(self.settings.retry_period):
                    return End.STOPPED
                token = await self.elector.acquire_or_renew()
                now = self._clock()
                if token is not None:
                    last_renewal = now
                    continue
                if lost(last_renewal, now, self.settings.renew_deadline):
                    logger.warning("lost the lease: not renewed for %.1fs", now - last_renewal)
                    return End.LOST
        finally:
            self.token = None
            self._on_change(False)


#: An elector of its own and how to close it, made on the thread that uses it.
ElectorFactory = Callable[[], tuple[Elector, Callable[[], Awaitable[None]]]]
#: Seconds between two looks at "stop?" by the renewing thread and by its caller.
STOP_POLL = 0.05


async def keep_on_own_thread(
    leadership: Leadership, stopping: Stopping, make_elector: ElectorFactory
) -> End:
    """:meth:`Leadership.keep` on a thread with an event loop and an elector of its own.

    The operator's loop can fall seconds behind under load (2,000 resources handled
    at start-up on a starved CPU: 19.5 s measured at 1,000 pools), and renewals
    that wait behind it lose the Lease of a leader that is working, only for the
    standby to start the same backlog over. client-go renews from a goroutine of
    its own; this is the same. The thread gets the GIL within its switch interval
    however busy the loop is; a loop that is dead rather than slow is the liveness
    probe's business. Returns once the thread has stopped renewing (so a release
    that follows cannot be undone by a late renewal), also when cancelled.
    """
    stop = threading.Event()
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[End] = loop.create_future()

    def report(outcome: End | BaseException) -> None:
        if finished.done():
            return
        if isinstance(outcome, BaseException):
            finished.set_exception(outcome)
        else:
            finished.set_result(outcome)

    def run() -> None:
        outcome: End | BaseException
        try:
            outcome = asyncio.run(_keep_until(leadership, stop, make_elector))
        except BaseException as exc:  # handed to the caller's loop
            outcome = exc
        loop.call_soon_threadsafe(report, outcome)

    async def until_stopping() -> None:
        while not await stopping(leadership.settings.retry_period):
            pass
        stop.set()

    threading.Thread(target=run, name="lease-keeper", daemon=True).start()
    watcher = asyncio.ensure_future(until_stopping())
    try:
        either: set[asyncio.Future[Any]] = {finished, watcher}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        return await asyncio.shield(finished)
    finally:
        stop.set()
        watcher.cancel()
        if not finished.done():
            await asyncio.wait({finished})
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        leadership.token = None
        leadership._on_change(False)


async def _keep_until(
    leadership: Leadership, stop: threading.Event, make_elector: ElectorFactory
) -> End:
    elector, close = make_elector()
    # Reports no change itself: the caller's loop does, once the thread has stopped.
    here = Leadership(elector, leadership.settings, clock=leadership._clock)
    here.token = leadership.token

    async def stopping(timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not stop.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(STOP_POLL)
        return stop.is_set()

    try:
        return await here.keep(stopping)
    finally:
        await close()


def flag_is_set(flag: Any) -> bool:
    """Whether a kopf-style stop flag (asyncio/threading Event, Future, or None) is set."""
    if flag is None:
        return False
    if isinstance(flag, asyncio.Event | threading.Event):
        return flag.is_set()
    if isinstance(flag, asyncio.Future | ConcurrentFuture):
        return flag.done()
    raise TypeError(f"unsupported stop flag: {flag!r}")


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``event``; whether it is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)
    return event.is_set()


@contextlib.asynccontextmanager
async def standby_liveness(endpoint: str | None) -> AsyncIterator[None]:
    """Answer ``GET <endpoint path>`` with 200 at kopf's liveness address while inside.

    Nothing is served when ``endpoint`` is empty. The port is free again on exit,
    so kopf can bind it when this replica starts leading.
    """
    if not endpoint:
        yield
        return
    url = urlsplit(endpoint)

    async def alive(_: web.Request) -> web.Response:
        return web.json_response({"leader": False})

    app = web.Application()
    app.router.add_get(url.path or "/", alive)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, url.hostname or "0.0.0.0", url.port or 80, reuse_address=True)
    await site.start()
    try:
        yield
    finally:
        await runner.cleanup()

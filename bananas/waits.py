"""Result waiters of one :class:`~bananas.AsyncClient` sharing a few connections.

A waiter blocks on its job's notify list, which the ack, fail and reap scripts push a
token to. One ``BLPOP`` per waiter would hold one connection per waiter: 5,000
concurrent ``submit_and_wait`` calls opened 5,000 connections, and on a cold client
many failed to connect at all. Here a :class:`WaitHub` keeps up to :data:`MAX_HUBS`
dedicated connections (hubs), each blocking in **one** ``BLPOP`` on the notify lists of
up to :data:`KEYS_PER_HUB` waited jobs plus a wake list of its own. When a token
arrives, the hub resolves every waiter of that job and passes the token on (for
waiters in other processes, as a single waiter does). A waiter that arrives while its
hub is blocked pushes one token to the hub's own list, so the hub blocks again with the
new key; arrivals in the meantime share that one push.

Only a single server (or Sentinel) supports this: on Redis Cluster the keys of a
``BLPOP`` must share a slot, so :class:`bananas.AsyncClient` waits one key at a time
there, as before. The sync client waits on its own thread's connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from typing import Any

from bananas.errors import BananasError
from bananas.ops import Batch, Op, command
from bananas.transport import FastLane, run_async

#: Dedicated connections one client's waiters share, at most.
MAX_HUBS = 16
#: Waited jobs per hub before another hub is opened (the keys of one BLPOP).
KEYS_PER_HUB = 256
#: Longest one BLPOP blocks (seconds): a stalled server is noticed within it.
BLOCK_SECONDS = 2.0
#: How long a notify token passed on is kept (ms), as ``broker.NOTIFY_TTL_MS``.
NOTIFY_TTL_MS = 60_000


class _Hub:
    """One connection blocking for many waiters (see the module docstring)."""

    def __init__(self, lane: FastLane, key: str, where: str) -> None:
        self.lane = lane
        self.where = where
        self.key = key
        self.waiting: dict[str, list[asyncio.Future[None]]] = {}
        self.task: asyncio.Task[None] | None = None
        self.blocked = False
        self.kicked = False

    def add(self, notify_key: str, future: asyncio.Future[None], kick: Callable[[], None]) -> None:
        self.waiting.setdefault(notify_key, []).append(future)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run(), name="bananas-waithub")
        elif self.blocked and not self.kicked:
            self.kicked = True
            kick()

    def remove(self, notify_key: str, future: asyncio.Future[None]) -> None:
        futures = self.waiting.get(notify_key)
        if futures is not None and future in futures:
            futures.remove(future)
            if not futures:
                del self.waiting[notify_key]

    async def _run(self) -> None:
        while self.waiting:
            keys = [self.key, *self.waiting]
            self.blocked, self.kicked = True, False
            try:
                reply = await run_async(self.lane, _blpop(keys), self.where)
            except BananasError as exc:
                self._fail_all(exc)
                return
            finally:
                self.blocked = False
            if not reply or reply[0] == self.key:
                continue
            notify_key = str(reply[0])
            for future in self.waiting.pop(notify_key, []):
                if not future.done():
                    future.set_result(None)
            with contextlib.suppress(BananasError):
                await run_async(self.lane, _pass_on(notify_key), self.where)

    def _fail_all(self, exc: BaseException) -> None:
        waiting, self.waiting = self.waiting, {}
        for futures in waiting.values():
            for future in futures:
                if not future.done():
                    future.set_exception(exc)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task
        await self.lane.close()


class WaitHub:
    """The hubs of one client. ``open_lane()`` opens a dedicated connection; ``run(op)``
    runs a short operation on the client's pool (the wake-up push); ``key(id)`` is the
    wake list of hub ``id`` (``KeySpace.waithub``)."""

    def __init__(
        self,
        open_lane: Callable[[], FastLane | None],
        run: Callable[[Op[None]], Any],
        where: str,
        key: Callable[[str], str],
    ) -> None:
        self._open_lane = open_lane
        self._key = key
        self._run = run
        self.where = where
        self._hubs: list[_Hub] = []
        self._kicks: set[asyncio.Task[Any]] = set()

    @property
    def connections(self) -> int:
        """Dedicated connections open now (one per hub)."""
        return len(self._hubs)

    def _hub(self) -> _Hub | None:
        for hub in self._hubs:
            if len(hub.waiting) < KEYS_PER_HUB:
                return hub
        if len(self._hubs) < MAX_HUBS:
            lane = self._open_lane()
            if lane is None:
                return None
            hub = _Hub(lane, self._key(uuid.uuid4().hex), self.where)
            self._hubs.append(hub)
            return hub
        return min(self._hubs, key=lambda h: len(h.waiting)) if self._hubs else None

    async def wait(self, notify_key: str, timeout: float) -> bool:
        """Wait up to ``timeout`` s for a token on ``notify_key``; True when one came.

        Raises :class:`bananas.BananasError` when the hub's connection failed.
        """
        hub = self._hub()
        if hub is None:
            raise BananasError("no dedicated connection for waiters on this client")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        hub.add(notify_key, future, lambda: self._kick(hub))
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            hub.remove(notify_key, future)

    def _kick(self, hub: _Hub) -> None:
        task = asyncio.get_running_loop().create_task(self._kick_now(hub))
        self._kicks.add(task)
        task.add_done_callback(self._kicks.discard)

    async def _kick_now(self, hub: _Hub) -> None:
        # A refused push (Redis down, or full) only delays the new waiter to the end of
        # the hub's current block (BLOCK_SECONDS at most).
        with contextlib.suppress(BananasError):
            await self._run(_push(hub.key))

    async def close(self) -> None:
        for task in list(self._kicks):
            task.cancel()
        hubs, self._hubs = self._hubs, []
        for hub in hubs:
            await hub.close()


def _blpop(keys: list[str]) -> Op[Any]:
    reply = yield command("BLPOP", *keys, BLOCK_SECONDS)
    return reply


def _pass_on(notify_key: str) -> Op[None]:
    yield Batch([command("RPUSH", notify_key, 1), command("PEXPIRE", notify_key, NOTIFY_TTL_MS)])


def _push(key: str) -> Op[None]:
    yield Batch([command("RPUSH", key, 1), command("PEXPIRE", key, NOTIFY_TTL_MS)])

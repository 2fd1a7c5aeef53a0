"""One SDK client per Redis URL and key prefix, shared, and never closed while in use.

Pools and schedules name their Redis by a Secret; many of them usually name
the same one. The operator keeps one :class:`bananas.AsyncClient` (one
connection pool) per (URL, prefix) rather than one per resource.

A client is *leased* for the length of one Redis round
(:meth:`RedisClients.lease`): the cache counts who is using each client and
closes only clients *that nobody is using*: those idle for more than
``idle_seconds`` (a URL no resource names any more), and, beyond ``limit``
clients, the least recently used. A round in progress never has its client
closed under it, however many Redis URLs the operator serves (the limit is
soft: with more URLs in use at once than the limit, it holds them all until
they are released). The limit is far above the number of Redis URLs a fleet
names (100 in the fleet benchmark): a client closed while its URL is still
polled would be reopened at the next poll, a reconnect per poll.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bananas.client import AsyncClient
from bananas.connection import mask_url

logger = logging.getLogger(__name__)

#: Clients kept open at most while idle (a soft limit: leased ones are never closed).
MAX_CLIENTS = 1024
#: Seconds after which a client nobody used is closed.
IDLE_SECONDS = 600.0


@dataclass
class _Entry:
    client: AsyncClient
    key: tuple[str, str]
    users: int = 0
    last_used: float = 0.0


class RedisClients:
    """A cache of :class:`AsyncClient` by (URL, prefix), with leases."""

    def __init__(
        self,
        *,
        limit: int = MAX_CLIENTS,
        idle_seconds: float = IDLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        #: Least recently used first.
        self._clients: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._by_client: dict[int, _Entry] = {}
        self._limit = limit
        self._idle_seconds = idle_seconds
        self._clock = clock
        self._lock = asyncio.Lock()
        self._closed = False

    def __len__(self) -> int:
        return len(self._clients)

    async def acquire(self, url: str, prefix: str) -> AsyncClient:
        """The client for ``url`` and ``prefix``, leased until :meth:`release`.

        Raises :class:`bananas.errors.ConfigError` for a URL the SDK cannot parse.
        """
        async with self._lock:
            if self._closed:  # shutting down: a client of its own, closed on release
                return AsyncClient(url, prefix=prefix)
            key = (url, prefix)
            entry = self._clients.get(key)
            if entry is None:
                entry = _Entry(AsyncClient(url, prefix=prefix), key)
                self._clients[key] = entry
                self._by_client[id(entry.client)] = entry
                logger.info("connected a Redis client to %s (prefix %s)", mask_url(url), prefix)
            self._clients.move_to_end(key)
            entry.users += 1
            entry.last_used = self._clock()
            await self._evict()
            return entry.client

    async def release(self, client: AsyncClient) -> None:
        """End a lease; then close idle clients beyond the limit, least recently used first.

        After :meth:`close`, the client is closed again: a round that was still running
        when the cache closed may have opened connections since.
        """
        if self._closed:
            await client.close()
            return
        async with self._lock:
            entry = self._by_client.get(id(client))
            if entry is not None and entry.client is client:
                entry.users = max(0, entry.users - 1)
            await self._evict()

    async def _evict(self) -> None:
        """Close unused clients idle too long, then unused ones beyond the limit, least
        recently used first (lock held). Walks from the least recently used end and
        stops at the first client that must stay, so a call costs O(closed + leased)."""
        stale = self._clock() - self._idle_seconds
        excess = len(self._clients) - self._limit
        doomed: list[_Entry] = []
        for entry in self._clients.values():
            if entry.users:
                continue  # leased: kept, and no reason to stop looking behind it
            if entry.last_used <= stale or len(doomed) < excess:
                doomed.append(entry)
                continue
            break  # idle but recent, within the limit: so is everything used after it
        for entry in doomed:
            del self._clients[entry.key]
            del self._by_client[id(entry.client)]
            await entry.client.close()

    @asynccontextmanager
    async def lease(self, url: str, prefix: str) -> AsyncIterator[AsyncClient]:
        """``async with clients.lease(url, prefix) as client``: acquire, then release."""
        client = await self.acquire(url, prefix)
        try:
            yield client
        finally:
            await self.release(client)

    async def close(self) -> None:
        """Close every client."""
        async with self._lock:
            self._closed = True
            clients = [entry.client for entry in self._clients.values()]
            self._clients.clear()
            self._by_client.clear()
        for client in clients:
            await client.close()

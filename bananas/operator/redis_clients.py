"""One SDK client per Redis URL and key prefix, shared, and never closed while in use.

Pools and schedules name their Redis by a Secret; many of them usually name
the same one. The operator keeps one :class:`bananas.AsyncClient` (one
connection pool) per (URL, prefix) rather than one per resource.

A client is *leased* for the length of one Redis round
(:meth:`RedisClients.lease`): the cache counts who is using each client, and
when it holds more than ``limit`` clients it closes the least recently used
ones *that nobody is using*. A round in progress never has its client closed
under it, however many Redis URLs the operator serves (the limit is soft: with
more URLs in use at once than the limit, it holds them all until they are
released). A URL that changed in a Secret leaves its old client behind until
it is the least recently used idle one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bananas.client import AsyncClient
from bananas.connection import mask_url

logger = logging.getLogger(__name__)

#: Idle clients kept open at most.
MAX_CLIENTS = 32


@dataclass
class _Entry:
    client: AsyncClient
    users: int = 0


class RedisClients:
    """A cache of :class:`AsyncClient` by (URL, prefix), with leases."""

    def __init__(self, *, limit: int = MAX_CLIENTS) -> None:
        self._clients: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._limit = limit
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
                entry = _Entry(AsyncClient(url, prefix=prefix))
                self._clients[key] = entry
                logger.info("connected a Redis client to %s (prefix %s)", mask_url(url), prefix)
            self._clients.move_to_end(key)
            entry.users += 1
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
            for entry in self._clients.values():
                if entry.client is client:
                    entry.users = max(0, entry.users - 1)
                    break
            await self._evict()

    async def _evict(self) -> None:
        """Close idle clients beyond the limit, least recently used first (lock held)."""
        excess = len(self._clients) - self._limit
        idle = [key for key, entry in self._clients.items() if entry.users == 0]
        for key in idle[: max(0, excess)]:
            await self._clients.pop(key).client.close()

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
        for client in clients:
            await client.close()

"""One SDK client per Redis URL, shared by every resource that points at it.

Pools and schedules name their Redis by a Secret; many of them usually name
the same one. The operator keeps one :class:`bananas.AsyncClient` (one
connection pool) per URL rather than one per resource, and closes the least
recently used when it holds too many (a URL that changed in a Secret leaves
its old client behind until then).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

from bananas.client import AsyncClient
from bananas.connection import mask_url

logger = logging.getLogger(__name__)

#: Clients kept open at most.
MAX_CLIENTS = 32


class RedisClients:
    """A small LRU cache of :class:`AsyncClient` by URL."""

    def __init__(self, *, limit: int = MAX_CLIENTS) -> None:
        self._clients: OrderedDict[str, AsyncClient] = OrderedDict()
        self._limit = limit
        self._lock = asyncio.Lock()

    async def get(self, url: str) -> AsyncClient:
        """The client for ``url``, created on first use.

        Raises :class:`bananas.errors.ConfigError` for a URL the SDK cannot parse.
        """
        async with self._lock:
            client = self._clients.get(url)
            if client is not None:
                self._clients.move_to_end(url)
                return client
            client = AsyncClient(url)
            self._clients[url] = client
            logger.info("connected a Redis client to %s", mask_url(url))
            while len(self._clients) > self._limit:
                _, old = self._clients.popitem(last=False)
                await old.close()
            return client

    async def close(self) -> None:
        """Close every client."""
        async with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
        for client in clients:
            await client.close()

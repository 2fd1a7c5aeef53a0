"""A tiny HTTP server on the worker's loop: /metrics, /healthz and /readyz.

It runs on the same asyncio loop as the worker, so an answer from ``/healthz``
proves the loop is alive and not blocked. ``/readyz`` is true while Redis answered
the last call, no internal task has died and the process is fetching; otherwise it
answers 503, with the reason when the probes give one (draining, an internal task
died, or the error of the failing Redis call: Redis away, or out of memory and
refusing work). ``/metrics`` refreshes the queue gauges with one O(1) stats call per
routing key, then renders the process's Prometheus registry. (A loop blocked by a
handler is noticed by the watchdog thread of ``loopwatch``, which this server cannot be.)

A supervisor (``supervisor.py``) serves the same three endpoints for its group with
this class: its probes are coroutines that ask the children, and its registry
holds the children's summed metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

logger = logging.getLogger(__name__)


class Probes(Protocol):
    """What the server asks the process it watches: a :class:`Worker`, or a supervisor,
    whose answers are coroutines that ask its children."""

    def is_ready(self) -> bool | Awaitable[bool]: ...

    def is_alive(self) -> bool | Awaitable[bool]: ...

    async def refresh_metrics(self) -> None: ...


class HasRegistry(Protocol):
    """What ``/metrics`` renders: a worker's ``Metrics`` or a supervisor's group."""

    registry: CollectorRegistry


class HealthServer:
    """Serves the three endpoints on ``host:port`` (port 0 picks a free one)."""

    def __init__(self, metrics: HasRegistry, *, host: str = "0.0.0.0", port: int = 8000) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self._probes: Probes | None = None
        self._server: asyncio.Server | None = None

    async def start(self, probes: Probes) -> int:
        """Start listening, answering the probes with ``probes``; returns the bound port."""
        self._probes = probes
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info("health and metrics on http://%s:%d", self.host, self.port)
        return self.port

    async def serve(self, probes: Probes) -> None:
        """Serve until cancelled."""
        if self._server is None:
            await self.start(probes)
        assert self._server is not None
        try:
            await asyncio.Event().wait()
        finally:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request.decode("latin-1").split()
            path = parts[1].split("?")[0] if len(parts) > 1 else "/"
            status, body, ctype = await self._route(path)
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _route(self, path: str) -> tuple[str, bytes, str]:
        probes = self._probes
        assert probes is not None, "start() sets the probes"
        if path == "/healthz":
            ok = await _answer(probes.is_alive)
            return (
                "200 OK" if ok else "503 Service Unavailable",
                b"ok\n" if ok else b"unhealthy\n",
                "text/plain",
            )
        if path == "/readyz":
            # A Worker says why it is not ready; a supervisor's probes only say whether.
            explain = getattr(probes, "not_ready_reason", None)
            if explain is not None:
                reason = explain()
                if reason is None:
                    return "200 OK", b"ready\n", "text/plain"
                body = f"not ready: {reason}\n".encode()
                return "503 Service Unavailable", body, "text/plain"
            ok = await _answer(probes.is_ready)
            return (
                "200 OK" if ok else "503 Service Unavailable",
                b"ready\n" if ok else b"not ready\n",
                "text/plain",
            )
        if path == "/metrics":
            with contextlib.suppress(Exception):
                await asyncio.wait_for(probes.refresh_metrics(), 5)
            return "200 OK", generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST
        return "404 Not Found", b"not found\n", "text/plain"


async def _answer(probe: Callable[[], bool | Awaitable[bool]]) -> bool:
    answer = probe()
    if inspect.isawaitable(answer):
        return bool(await answer)
    return bool(answer)

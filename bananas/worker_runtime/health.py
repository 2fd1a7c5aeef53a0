"""A tiny HTTP server on the worker's loop: /metrics, /healthz and /readyz.

It runs on the same asyncio loop as the worker, so an answer from ``/healthz``
proves the loop is alive and not blocked. ``/readyz`` is true while Redis answered
the last call, no internal task has died and the process is fetching; otherwise it
answers 503 with the reason (draining, an internal task died, or the error of
the failing Redis call: Redis away, or out of memory and refusing work).
``/metrics`` refreshes the queue gauges with one O(1) stats call per routing key,
then renders the process's Prometheus registry. (A loop blocked by a handler is
noticed by the watchdog thread of ``loopwatch``, which this server cannot be.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bananas.worker_runtime.metrics import Metrics

logger = logging.getLogger(__name__)


class Probes(Protocol):
    """What the server asks the process it watches (the :class:`Worker`)."""

    def not_ready_reason(self) -> str | None: ...

    def is_alive(self) -> bool: ...

    async def refresh_metrics(self) -> None: ...


class HealthServer:
    """Serves the three endpoints on ``host:port`` (port 0 picks a free one)."""

    def __init__(self, metrics: Metrics, *, host: str = "0.0.0.0", port: int = 8000) -> None:
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
            ok = probes.is_alive()
            return (
                "200 OK" if ok else "503 Service Unavailable",
                b"ok\n" if ok else b"unhealthy\n",
                "text/plain",
            )
        if path == "/readyz":
            reason = probes.not_ready_reason()
            if reason is None:
                return "200 OK", b"ready\n", "text/plain"
            return "503 Service Unavailable", f"not ready: {reason}\n".encode(), "text/plain"
        if path == "/metrics":
            with contextlib.suppress(Exception):
                await asyncio.wait_for(probes.refresh_metrics(), 5)
            return "200 OK", generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST
        return "404 Not Found", b"not found\n", "text/plain"

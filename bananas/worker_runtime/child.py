"""The worker-process side of a supervised group (``bananas worker --processes N``).

A supervised worker is a normal ``bananas worker`` process with one extra: a
:class:`ChildLink`, a Unix socket its supervisor created and handed over as an
inherited file descriptor (its number in ``BANANAS_SUPERVISOR_FD``). Over it the
child sends one JSON object per line:

``{"event": "ready", "port": N}``   its private /metrics, /healthz, /readyz port
``{"event": "recycling", "reason": text}``   it reached a recycling limit and
    starts its drain (the supervisor starts its replacement at once)
``{"event": "final", "metrics": text, "recycled": reason or null}``
    after the drain, before it exits: its last metrics, and why it stopped when it
    reached a recycling limit

and it reads nothing but the end of the stream: when the supervisor goes away
(even by SIGKILL) the socket closes and the child drains as on SIGTERM, so no
worker outlives its supervisor.

:class:`Recycler` enforces ``--max-jobs-per-child`` (called back by
``Metrics.notify_after`` on the job that reaches the limit, no timer) and
``--max-memory-per-child`` (resident memory read every
:data:`MEMORY_CHECK_SECONDS`). Either asks the worker to stop exactly as SIGTERM
does: it stops fetching, hands unstarted jobs back, finishes running ones and
flushes their acks, so nothing is lost and nothing runs twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bananas.worker_runtime.metrics import Metrics

logger = logging.getLogger(__name__)

#: Internal variable naming the inherited link descriptor (set by the supervisor only).
LINK_FD_VAR = "BANANAS_SUPERVISOR_FD"
#: How often a child with a memory limit reads its resident size.
MEMORY_CHECK_SECONDS = 1.0
#: Largest line either side sends (a final metrics dump of many label sets).
LINK_LINE_LIMIT = 64 * 1024 * 1024


class ChildLink:
    """The child's end of the supervisor's socket."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ChildLink | None:
        """The link this process was started with, or None when it is not supervised."""
        raw = (os.environ if env is None else env).get(LINK_FD_VAR, "")
        return cls(int(raw)) if raw.isdigit() else None

    async def open(self) -> None:
        """Take the link over; a process this worker starts inherits neither it nor its name."""
        os.environ.pop(LINK_FD_VAR, None)
        os.set_inheritable(self.fd, False)
        sock = socket.socket(fileno=self.fd)
        self._reader, self._writer = await asyncio.open_connection(sock=sock, limit=LINK_LINE_LIMIT)

    async def send(self, event: str, **fields: Any) -> None:
        """Send one event; a supervisor that is gone is not an error here."""
        if self._writer is None:
            return
        line = json.dumps({"event": event, **fields}, separators=(",", ":")) + "\n"
        with contextlib.suppress(ConnectionError, RuntimeError):
            self._writer.write(line.encode())
            await self._writer.drain()

    async def parent_gone(self) -> None:
        """Return when the supervisor closed its end (it exited, or was killed)."""
        assert self._reader is not None
        while await self._reader.read(65536):
            pass

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()


def resident_mib() -> float:
    """This process's resident set size in MiB (peak size where /proc is missing)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


@dataclass
class Recycler:
    """Asks for a drain once a recycling limit is reached (see the module docstring)."""

    metrics: Metrics
    max_jobs: int = 0
    max_memory_mib: int = 0
    rss: Callable[[], float] = resident_mib

    def watch(self, recycle: Callable[[str], None]) -> None:
        """Arm the job-count limit: ``recycle(reason)`` runs on the job that reaches it."""
        if self.max_jobs:
            self.metrics.notify_after(
                self.max_jobs, lambda: recycle(f"finished {self.max_jobs} job(s)")
            )

    async def watch_memory(self, recycle: Callable[[str], None]) -> None:
        """Read the resident size until it passes the limit, then ``recycle`` once."""
        if not self.max_memory_mib:
            return
        while True:
            used = self.rss()
            if used > self.max_memory_mib:
                recycle(f"resident memory {used:.0f} MiB > {self.max_memory_mib} MiB")
                return
            await asyncio.sleep(MEMORY_CHECK_SECONDS)

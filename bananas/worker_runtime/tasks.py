"""How the supervisor runs its pieces: watched asyncio tasks, and a loop in a thread.

:class:`Tasks` spawns the long-lived tasks of a worker, logs one that dies (so
``/healthz`` turning false comes with a reason), tells whether any has died, and
cancels them all at the end. :class:`LoopThread` gives a worker embedded in a
sync application its own event loop in a daemon thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

logger = logging.getLogger(__name__)


class Tasks:
    """The tasks one supervisor started."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> asyncio.Task[None]:
        """Start ``coro`` as a task named ``name``, watched from now on."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        task.add_done_callback(_report_crash)
        self._tasks.append(task)
        return task

    def service(self, factory: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        """Start the coroutine ``factory()`` returns (a cron scheduler, a health server)."""
        return self.spawn(_await(factory), name="bananas-service")

    def any_died(self) -> bool:
        """Did a task end with an error (not by being cancelled)?"""
        return any(t.done() and not t.cancelled() for t in self._tasks)

    async def cancel_all(self) -> None:
        """Cancel every task still running and wait until all have ended."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class LoopThread:
    """Runs ``start()`` then ``until()`` on a new loop in a daemon thread named ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(
        self,
        start: Callable[[], Coroutine[Any, Any, None]],
        until: Callable[[], Coroutine[Any, Any, Any]],
    ) -> None:
        """Return once ``start()`` has returned on the thread's loop; re-raise what it raised."""
        started = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(start())
            except BaseException as exc:
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_until_complete(until())
            loop.close()

        self._thread = threading.Thread(target=main, name=self.name, daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            raise failure[0]

    def finish(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` on the thread's loop (it should end ``until``), then join the thread."""
        if self._loop is None or self._thread is None:
            coro.close()
            return
        asyncio.run_coroutine_threadsafe(coro, self._loop).result()
        self._thread.join()


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("worker task %s died", task.get_name(), exc_info=task.exception())


async def _await(factory: Callable[[], Awaitable[None]]) -> None:
    await factory()

"""Polling with a deadline: the one way the tests wait for state they cannot await.

``eventually`` (sync) and ``eventually_async`` call ``check`` until it returns something
truthy and return that value; after ``timeout`` seconds they raise ``error`` with a
message naming ``what`` (a string, or a callable evaluated only on timeout, so it can
carry a log tail). ``check`` may raise to fail at once (a process that exited).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

#: Seconds between two checks, unless the caller says otherwise.
INTERVAL = 0.02


def _timeout_message(timeout: float, what: str | Callable[[], str]) -> str:
    described = what() if callable(what) else what
    return f"timed out after {timeout:g}s waiting for {described}"


def eventually(
    check: Callable[[], T],
    timeout: float = 10.0,
    *,
    interval: float = INTERVAL,
    what: str | Callable[[], str] = "condition",
    error: Callable[[str], BaseException] = TimeoutError,
) -> T:
    """Call ``check`` until it returns something truthy; return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise error(_timeout_message(timeout, what))
        time.sleep(interval)


async def eventually_async(
    check: Callable[[], Awaitable[T]],
    timeout: float = 10.0,
    *,
    interval: float = INTERVAL,
    what: str | Callable[[], str] = "condition",
    error: Callable[[str], BaseException] = TimeoutError,
) -> T:
    """Await ``check()`` until it returns something truthy; return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise error(_timeout_message(timeout, what))
        await asyncio.sleep(interval)

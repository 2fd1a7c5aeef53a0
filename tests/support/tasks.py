"""The asyncio task-leak guard (STYLE asks for one): a coroutine test fails if a task it
created is still pending on the loop once the test and its fixtures have finished.

pytest-asyncio closes the test's loop by cancelling whatever is left, so without this a
test that forgets a task passes quietly. ``tests/conftest.py`` adds the ``no_leaked_tasks``
fixture to every coroutine test, first in line, so it is torn down last: tasks a fixture
starts and stops are not leaks, tasks nobody stops are.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest


def describe(task: asyncio.Task[object]) -> str:
    coro = task.get_coro()
    name = getattr(coro, "__qualname__", repr(coro))
    return f"{task.get_name()} ({name})"


@pytest.fixture
async def no_leaked_tasks() -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield
    # One turn of the loop: a task cancelled by a teardown finishes its cancellation here.
    await asyncio.sleep(0)
    leaked = asyncio.all_tasks() - before - {asyncio.current_task()}
    if not leaked:
        return
    for task in leaked:
        task.cancel()
    with contextlib.suppress(BaseException):
        await asyncio.wait(leaked, timeout=5)
    names = ", ".join(sorted(describe(t) for t in leaked))
    pytest.fail(f"the test left {len(leaked)} asyncio task(s) pending: {names}")

"""The operator gives the pages a burst freed back to the system (glibc only)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os

import pytest

from bananas.operator.runner import trim_memory

pytestmark = pytest.mark.skipif(
    not hasattr(ctypes.CDLL(None), "malloc_trim") or not os.path.exists("/proc/self/statm"),
    reason="needs glibc's malloc_trim and /proc",
)


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def test_freed_memory_leaves_the_resident_size_at_the_next_trim() -> None:
    # Blocks above pymalloc's 512 bytes come from malloc; the last one is kept, so the
    # freed ones sit below it in the heap, where free() alone never returns them.
    blocks = [bytes(2000) for _ in range(50_000)]
    survivor = blocks[-1]
    del blocks
    held = _rss()
    trimming = asyncio.create_task(trim_memory(0.01))
    await asyncio.sleep(0.2)
    trimming.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await trimming
    assert held - _rss() > 50 * 2**20  # of the ~100 MB freed
    assert len(survivor) == 2000

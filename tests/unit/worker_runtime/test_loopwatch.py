"""The blocked-loop watchdog thread, on a real event loop blocked by ``time.sleep``."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time

import pytest

from bananas.worker_runtime.loopwatch import LoopWatch, Running, blocker, threshold


def test_threshold_is_a_quarter_lease_at_most_one_second() -> None:
    assert threshold(10.0) == 1.0
    assert threshold(2.0) == 0.5
    assert threshold(0.1) == 0.2  # never below two ticks


def test_blocker_finds_the_handler_whose_frame_is_on_the_stack() -> None:
    here = sys._getframe()
    other = Running("other", "x", None)
    mine = Running("mine", "y", here)
    assert blocker(here, [other, mine]) is mine
    assert blocker(here, [other]) is None
    assert blocker(None, [mine]) is None


async def test_a_blocked_loop_is_reported_by_job_and_its_leases_renewed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    renewals: list[str] = []
    running: list[Running] = []

    def renew() -> None:
        renewals.append(threading.current_thread().name)

    watch = LoopWatch(lease_seconds=0.9, running=lambda: running, renew=renew)
    beat = asyncio.create_task(watch.heartbeat())

    async def handler() -> None:
        time.sleep(1.2)  # blocks the loop: what the watchdog is for

    await asyncio.sleep(0.25)
    coro = handler()
    running.append(Running("job-42", "sleepy", coro.cr_frame))
    with caplog.at_level(logging.WARNING, "bananas.worker_runtime.loopwatch"):
        await coro
        await asyncio.sleep(0.3)  # the thread sees the loop turn again
    beat.cancel()
    await asyncio.gather(beat, return_exceptions=True)
    messages = [r.getMessage() for r in caplog.records]
    assert watch.blocks == 1
    assert any("job-42 (sleepy)" in m for m in messages), messages
    assert any("ran again" in m for m in messages), messages
    # One renewal a third of a lease (0.3 s) while blocked ~0.95 s past the threshold.
    assert 2 <= len(renewals) <= 5 and set(renewals) == {"bananas-loopwatch"}

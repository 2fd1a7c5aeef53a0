"""Leadership: acquire, keep and lose the operator's Lease, against a scripted elector."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Awaitable, Callable

import pytest

from bananas.operator.config import LeaderElectionSettings
from bananas.operator.leadership import (
    Elector,
    End,
    Leadership,
    flag_is_set,
    identity_of,
    keep_on_own_thread,
    lost,
    wait_event,
)

SETTINGS = LeaderElectionSettings(
    enabled=True, namespace="ops", lease_duration=15, renew_deadline=10, retry_period=2
)


class ScriptedElector:
    """Answers acquire_or_renew from a script; each call moves the fake clock 2 s on."""

    def __init__(self, answers: list[int | None]) -> None:
        self.answers = answers
        self.calls = 0
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def acquire_or_renew(self) -> int | None:
        self.now += 2.0
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return answer

    async def release(self) -> None:
        return None


async def never(_: float) -> bool:
    await asyncio.sleep(0)
    return False


def test_lost_after_the_renew_deadline() -> None:
    assert not lost(100.0, 110.0, 10.0)
    assert lost(100.0, 110.5, 10.0)


def test_identity_defaults_to_host_and_pid() -> None:
    assert identity_of(LeaderElectionSettings(identity="op-0")) == "op-0"
    assert identity_of(LeaderElectionSettings()).endswith(f"-{os.getpid()}")


async def test_acquire_waits_for_the_lease() -> None:
    elector = ScriptedElector([None, None, 3])
    changes: list[bool] = []
    leadership = Leadership(elector, SETTINGS, clock=elector.clock, on_change=changes.append)
    assert await leadership.acquire(never)
    assert (elector.calls, leadership.token, changes) == (3, 3, [True])


async def test_acquire_gives_up_when_stopping() -> None:
    elector = ScriptedElector([None])

    async def stop(_: float) -> bool:
        return elector.calls >= 2

    assert not await Leadership(elector, SETTINGS, clock=elector.clock).acquire(stop)
    assert elector.calls == 2


async def test_keep_survives_failed_renewals_within_the_deadline() -> None:
    # Renewals fail for 8 s (four 2 s ticks) then succeed: still leading.
    elector = ScriptedElector([None, None, None, None, 1, None])
    changes: list[bool] = []
    leadership = Leadership(elector, SETTINGS, clock=elector.clock, on_change=changes.append)
    leadership.token = 1
    end = await leadership.keep(never)
    # Lost only once 10 s went by after the successful fifth call (at t=10).
    assert end is End.LOST
    assert elector.now > 10 + SETTINGS.renew_deadline
    assert (leadership.token, changes) == (None, [False])


async def test_keep_returns_stopped() -> None:
    elector = ScriptedElector([1])

    async def stop(_: float) -> bool:
        return elector.calls >= 3

    end = await Leadership(elector, SETTINGS, clock=elector.clock).keep(stop)
    assert (end, elector.calls) == (End.STOPPED, 3)


async def test_flags() -> None:
    event, thread_event = asyncio.Event(), threading.Event()
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    assert not any(flag_is_set(f) for f in (None, event, thread_event, future))
    event.set()
    thread_event.set()
    future.set_result(None)
    assert all(flag_is_set(f) for f in (event, thread_event, future))
    with pytest.raises(TypeError):
        flag_is_set("stop")


async def test_wait_event() -> None:
    event = asyncio.Event()
    assert not await wait_event(event, 0.01)
    event.set()
    assert await wait_event(event, 10)


class CountingElector:
    """Renews every time (a Lease held), counting renewals and the threads they ran on."""

    def __init__(self) -> None:
        self.renewals = 0
        self.threads: set[str] = set()
        self.closed = False

    async def acquire_or_renew(self) -> int | None:
        self.renewals += 1
        self.threads.add(threading.current_thread().name)
        return 7

    async def release(self) -> None:
        return None

    async def close(self) -> None:
        self.closed = True


def factory_of(elector: Elector) -> Callable[[], tuple[Elector, Callable[[], Awaitable[None]]]]:
    async def close() -> None:
        if isinstance(elector, CountingElector):
            await elector.close()

    return lambda: (elector, close)


FAST = LeaderElectionSettings(
    enabled=True, namespace="ops", lease_duration=3, renew_deadline=2, retry_period=0.1
)


async def test_renewals_go_on_while_the_loop_is_blocked() -> None:
    """The operator's loop blocked for 1.5 s (as a starved one falls behind): the
    renewing thread still renews, and stops once told, before the call returns."""
    elector = CountingElector()
    leadership = Leadership(CountingElector(), FAST)
    leadership.token = 7
    told = asyncio.Event()

    async def stopping(timeout: float) -> bool:
        return await wait_event(told, timeout)

    keeper = asyncio.create_task(keep_on_own_thread(leadership, stopping, factory_of(elector)))
    await asyncio.sleep(0.3)
    before = elector.renewals
    time.sleep(1.5)  # the loop does nothing else meanwhile
    during = elector.renewals - before
    assert during >= 5  # ~15 at one per 0.1 s
    told.set()
    assert await keeper is End.STOPPED
    after = elector.renewals
    await asyncio.sleep(0.3)
    assert elector.renewals == after  # nothing renewed once it returned
    assert elector.closed and elector.threads == {"lease-keeper"}
    assert leadership.token is None


async def test_lost_on_the_thread_is_lost_for_the_caller() -> None:
    elector = ScriptedElector([None])
    leadership = Leadership(elector, FAST, clock=elector.clock)
    assert await keep_on_own_thread(leadership, never, factory_of(elector)) is End.LOST


async def test_a_cancelled_keeper_returns_after_the_thread_stopped() -> None:
    elector = CountingElector()
    keeper = asyncio.create_task(
        keep_on_own_thread(Leadership(elector, FAST), never, factory_of(elector))
    )
    await asyncio.sleep(0.3)
    keeper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await keeper
    stopped_at = elector.renewals
    await asyncio.sleep(0.3)
    assert elector.renewals == stopped_at and elector.closed


async def test_a_term_lost_while_kopf_fails_to_stop_cleanly_stands_by(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """kopf stopped at a bad moment re-raises a task's error (seen at 1,000 pools: a
    TimeoutError); after a lost Lease that ends the term, not the replica. kopf is
    stood in for here: the race cannot be produced on demand."""
    from bananas.operator import runner

    async def kopf_failing_on_stop(
        config: object, ctx: object, stop: asyncio.Event, *_: object
    ) -> None:
        await stop.wait()
        raise TimeoutError

    monkeypatch.setattr(runner, "_run_kopf", kopf_failing_on_stop)
    elector = ScriptedElector([1, None])  # renewals fail from the second on
    leadership = Leadership(elector, FAST, clock=elector.clock)
    lead = runner._lead(None, None, leadership, factory_of(elector), never, None, None)  # type: ignore[arg-type]
    assert await lead is False  # lost: the caller stands by again

    async def kopf_failing(config: object, ctx: object, stop: asyncio.Event, *_: object) -> None:
        raise RuntimeError("kopf broke while leading")

    monkeypatch.setattr(runner, "_run_kopf", kopf_failing)
    held = CountingElector()
    leading = Leadership(held, FAST)
    with pytest.raises(RuntimeError, match="while leading"):  # not lost: not hidden
        await runner._lead(None, None, leading, factory_of(held), never, None, None)  # type: ignore[arg-type]

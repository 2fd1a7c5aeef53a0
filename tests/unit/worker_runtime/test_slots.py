"""The slots (``bananas.worker_runtime.slots``), with an executor whose jobs finish at
once or wait on an event the test sets: jobs that do not wait run back to back in one
slot's turn of the loop, jobs that wait run side by side up to the concurrency, and a
ready job never waits behind a job that is waiting."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bananas.broker import Leased, Outcome
from bananas.models import Priority
from bananas.worker_runtime.executor import Finished
from bananas.worker_runtime.metrics import Metrics
from bananas.worker_runtime.slots import Slots

pytestmark = pytest.mark.timeout(10)

ROUTE = "default"


class Executor:
    """Runs job ``id``: at once, unless the test gave it an event to wait on."""

    def __init__(self) -> None:
        self.gates: dict[str, asyncio.Event] = {}
        #: job id -> the task that ran it
        self.ran_on: dict[str, asyncio.Task[Any]] = {}
        self.started: list[str] = []
        self.cancelled: list[str] = []
        #: Jobs past their deadline: a cancellation of theirs is the watchdog's.
        self.expired: set[str] = set()

    async def run(self, routing_key: str, leased: Leased) -> Finished:
        task = asyncio.current_task()
        assert task is not None
        self.ran_on[leased.id] = task
        self.started.append(leased.id)
        gate = self.gates.get(leased.id)
        status = "completed"
        if gate is not None:
            try:
                await gate.wait()
            except asyncio.CancelledError:  # as the executor tells a deadline from a stop
                if leased.id not in self.expired:
                    raise
                task.uncancel()
                self.cancelled.append(leased.id)
                status = "retried"
        if leased.id.startswith("boom"):
            raise RuntimeError("a bug of the runtime")
        return finished(leased.id, status)

    def internal_error(self, routing_key: str, leased: Leased, exc: BaseException) -> Finished:
        return finished(leased.id, "retried")


def finished(job_id: str, status: str) -> Finished:
    return Finished(
        ROUTE, Outcome(job_id, 1, "", 0), status != "completed", "n", status, 0.0, Priority.NORMAL
    )


class Leases:
    def __init__(self) -> None:
        self.done: list[str] = []

    def finished(self, leased: Leased) -> None:
        self.done.append(leased.id)


class Acker:
    def __init__(self) -> None:
        self.got: list[Finished] = []
        self.changed = asyncio.Event()

    def put(self, f: Finished) -> None:
        self.got.append(f)
        self.changed.set()

    async def until(self, n: int) -> None:
        while len(self.got) < n:
            self.changed.clear()
            await self.changed.wait()


class Scene:
    def __init__(self, concurrency: int) -> None:
        self.executor, self.leases, self.acker = Executor(), Leases(), Acker()
        self.metrics = Metrics()
        self.slots = Slots(
            self.executor,  # type: ignore[arg-type]
            self.leases,  # type: ignore[arg-type]
            self.acker,  # type: ignore[arg-type]
            self.metrics,
            concurrency=concurrency,
        )
        self.slots.start(asyncio.create_task)

    def offer(self, *ids: str) -> None:
        for job_id in ids:
            self.slots.offer(ROUTE, Leased(job_id, "{}", 1))

    async def idle(self) -> None:
        """Until every slot has gone to sleep."""
        while len(self.slots._waiting) < self.slots.concurrency:
            await asyncio.sleep(0)


async def test_a_batch_that_never_waits_runs_in_one_slot_turn() -> None:
    scene = Scene(concurrency=10)
    await scene.idle()
    asleep = list(scene.slots._waiting)
    ids = [f"j{i}" for i in range(10)]
    scene.offer(*ids)
    await scene.acker.until(10)
    await scene.idle()
    assert {scene.executor.ran_on[i] for i in ids} == {scene.executor.ran_on["j0"]}
    assert sum(not w.done() for w in asleep) == 9, "one slot woken for the batch, not ten"
    assert scene.leases.done == ids
    assert scene.metrics.finished == 10
    assert scene.slots.busy == 0
    await scene.slots.stop()


async def test_jobs_that_wait_run_side_by_side_up_to_the_concurrency() -> None:
    scene = Scene(concurrency=3)
    ids = [f"w{i}" for i in range(5)]
    for job_id in ids:
        scene.executor.gates[job_id] = asyncio.Event()
    await scene.idle()
    scene.offer(*ids)
    while len(scene.executor.started) < 3:
        await asyncio.sleep(0)
    for _ in range(5):  # nothing more starts while the three wait
        await asyncio.sleep(0)
    assert scene.executor.started == ids[:3]
    assert scene.slots.busy == 3
    assert len({scene.executor.ran_on[i] for i in ids[:3]}) == 3
    scene.executor.gates["w1"].set()
    await scene.acker.until(1)
    while len(scene.executor.started) < 4:
        await asyncio.sleep(0)
    assert scene.executor.started == ids[:4]
    for job_id in ids:
        scene.executor.gates[job_id].set()
    await scene.acker.until(5)
    assert sorted(f.outcome.id for f in scene.acker.got) == ids
    await scene.slots.stop()


async def test_ready_jobs_do_not_wait_behind_a_job_that_waits() -> None:
    scene = Scene(concurrency=2)
    scene.executor.gates["slow"] = asyncio.Event()
    await scene.idle()
    scene.offer("slow", "a", "b", "c")
    await scene.acker.until(3)
    assert [f.outcome.id for f in scene.acker.got] == ["a", "b", "c"]
    assert scene.executor.ran_on["a"] is not scene.executor.ran_on["slow"]
    scene.executor.gates["slow"].set()
    await scene.acker.until(4)
    # Both slots asleep again, and an offer still wakes one.
    await scene.idle()
    scene.offer("d")
    await scene.acker.until(5)
    await scene.slots.stop()


async def test_a_job_offered_while_every_slot_waits_starts_when_one_is_free() -> None:
    scene = Scene(concurrency=1)
    scene.executor.gates["slow"] = asyncio.Event()
    await scene.idle()
    scene.offer("slow", "next")
    while not scene.executor.started:
        await asyncio.sleep(0)
    for _ in range(5):
        await asyncio.sleep(0)
    assert scene.executor.started == ["slow"]
    scene.executor.gates["slow"].set()
    await scene.acker.until(2)
    assert scene.executor.started == ["slow", "next"]
    await scene.slots.stop()


async def test_a_cancel_of_the_slot_task_reaches_the_waiting_job() -> None:
    """The deadline watchdog cancels the task a job runs on: the job the slot started
    itself gets the cancellation, and the slot keeps serving."""
    scene = Scene(concurrency=2)
    scene.executor.gates["stuck"] = asyncio.Event()
    await scene.idle()
    scene.offer("stuck")
    while not scene.executor.started:
        await asyncio.sleep(0)
    scene.executor.expired.add("stuck")
    scene.executor.ran_on["stuck"].cancel()
    await scene.acker.until(1)
    assert scene.executor.cancelled == ["stuck"]
    assert scene.acker.got[0].status == "retried"
    scene.offer("after")
    await scene.acker.until(2)
    await scene.slots.stop()


async def test_a_runtime_error_fails_the_attempt_and_the_slot_goes_on() -> None:
    scene = Scene(concurrency=1)
    scene.executor.gates["boom-late"] = asyncio.Event()
    await scene.idle()
    scene.offer("boom-now", "boom-late", "fine")
    while len(scene.executor.started) < 2:
        await asyncio.sleep(0)
    scene.executor.gates["boom-late"].set()
    await scene.acker.until(3)
    assert [(f.outcome.id, f.status) for f in scene.acker.got] == [
        ("boom-now", "retried"),
        ("boom-late", "retried"),
        ("fine", "completed"),
    ]
    await scene.slots.stop()


async def test_unstarted_jobs_are_handed_back_and_stop_cuts_waiting_jobs_off() -> None:
    scene = Scene(concurrency=1)
    scene.executor.gates["slow"] = asyncio.Event()
    await scene.idle()
    scene.offer("slow", "queued")
    while not scene.executor.started:
        await asyncio.sleep(0)
    assert [leased.id for _, leased in scene.slots.take_unstarted()] == ["queued"]
    await scene.slots.stop()
    assert scene.executor.started == ["slow"]
    assert scene.acker.got == []

"""Pure decisions of the supervisor: when to supervise, how an exit is described."""

from __future__ import annotations

import signal

import pytest

from bananas.config import Settings
from bananas.worker_runtime.supervisor import describe_exit, wants_supervisor


def test_one_process_without_limits_is_a_plain_worker() -> None:
    assert not wants_supervisor(Settings())
    assert wants_supervisor(Settings(processes=2))
    assert wants_supervisor(Settings(max_jobs_per_child=100))
    assert wants_supervisor(Settings(max_memory_per_child=256))
    scheduler = Settings().with_changes(mode="scheduler-only", processes=4)
    assert not wants_supervisor(scheduler), "a scheduler always runs as one process"


def test_exits_are_described_by_code_or_signal() -> None:
    assert describe_exit(1) == "exited with code 1"
    assert describe_exit(-signal.SIGKILL) == "was killed by SIGKILL"
    assert describe_exit(-signal.SIGSEGV) == "was killed by SIGSEGV"


def test_restart_backoff_doubles_to_its_cap_and_marks_a_crash_loop() -> None:
    from bananas.worker_runtime.supervisor import (
        CRASH_LOOP_AFTER,
        RESTART_BACKOFF_MAX,
        Slot,
        Supervisor,
    )

    slot = Slot(0, Supervisor(Settings(processes=2)))
    delays = []
    for failures in range(1, 10):
        slot.failures = failures
        delays.append(slot._backoff())
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0]
    assert delays[-1] == RESTART_BACKOFF_MAX
    slot.failures = CRASH_LOOP_AFTER - 1
    assert not slot.crash_looping
    slot.failures = CRASH_LOOP_AFTER
    assert slot.crash_looping


def test_each_child_gets_the_settings_and_an_identity_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bananas.worker_runtime.supervisor import Supervisor

    monkeypatch.setenv("POD_NAME", "pool-abc")
    settings = Settings(processes=3, concurrency=4, max_jobs_per_child=9)
    env = Supervisor(settings).child_env(2)
    assert env["POD_NAME"] == "pool-abc-2"
    assert env["WORKER_PROCESSES"] == "1"
    assert env["WORKER_CONCURRENCY"] == "4" and env["WORKER_MAX_JOBS_PER_CHILD"] == "9"

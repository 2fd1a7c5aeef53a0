"""Pure decisions of the supervisor: when to supervise, how an exit is described."""

from __future__ import annotations

import signal

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

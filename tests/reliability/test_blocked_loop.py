"""A blocked event loop (``tests.chaos.block_loop``): an ``async def`` handler that
calls ``time.sleep`` for longer than the lease. A watchdog thread notices the loop has
stopped turning, logs which job's handler blocks it, exports it as a metric and keeps
the worker's leases alive from the thread, so neither the blocking job nor the jobs
fetched with it run twice or are dead-lettered as "worker lost"."""

from __future__ import annotations

import random

import pytest

from tests.chaos import CI, Servers, table
from tests.chaos.block_loop import blocked_loop

pytestmark = pytest.mark.timeout(120)


def test_a_handler_blocking_the_loop_past_the_lease_runs_once(
    servers: Servers, rng: random.Random
) -> None:
    report = blocked_loop(servers, CI, rng)
    print(table([report]))
    assert (report.lost, report.duplicated, report.falsely_dead) == (0, 0, 0), report.details
    assert report.details["a log line names the blocking job"], report.details
    assert report.details["metric exported"]

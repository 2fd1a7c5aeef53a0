"""Fault scenarios against real worker processes and a real Redis, with a ledger.

    python -m tests.chaos            # CI scale: what tests/reliability asserts on
    python -m tests.chaos --full     # 100,000 jobs, longer and more faults (make chaos)
    python -m tests.chaos --only crashes,rollout --seed 7

Every scenario drives real ``bananas worker`` / ``bananas scheduler`` subprocesses
(``tests.support.processes.WorkerProcess``) that run the ``work`` handler of
``tests.apps.chaos_handlers``. That handler counts every completed run in a ledger
kept on a second Redis server that no fault touches, so the numbers survive the
faults they measure:

- **lost**: a job the client was told was stored that never completed;
- **duplicated**: completed runs beyond one per job (at-least-once allows them only
  for jobs whose lease was lost: in flight on a killed worker, or during a stall);
- **recovery**: per fault, how long until the system was whole again (see each
  scenario's docstring for what is timed).

Each scenario returns a :class:`Report`; the tests in ``tests/reliability`` run them
at CI scale and assert on the reports, ``main`` prints them as a table. Every process
a scenario starts is killed and reaped when it ends, whatever happened.

One module per scenario (``kill_workers``, ``restart_redis``, ``stall_redis``,
``roll_workers``, ``kill_scheduler``, ``kill_cron_leader``, ``kill_workflows``; round
two: ``skew_clocks``, ``fill_redis``, ``block_loop``, ``drop_replies``), what they share
in ``common``, the command line in ``__main__``. Round two's scenarios also report jobs
*falsely dead-lettered* (in the DLQ although their handler never failed).
"""

from __future__ import annotations

from tests.chaos.common import APP, CI, FULL, Report, Scale, Servers, table
from tests.chaos.kill_cron_leader import cron_failover
from tests.chaos.kill_scheduler import scheduler_failover
from tests.chaos.kill_workers import crashes
from tests.chaos.kill_workflows import chain_crashes, chord_crashes
from tests.chaos.restart_redis import redis_restart
from tests.chaos.roll_workers import rollout
from tests.chaos.stall_redis import redis_stall

__all__ = [
    "APP",
    "CI",
    "FULL",
    "Report",
    "Scale",
    "Servers",
    "chain_crashes",
    "chord_crashes",
    "crashes",
    "cron_failover",
    "redis_restart",
    "redis_stall",
    "rollout",
    "scheduler_failover",
    "table",
]

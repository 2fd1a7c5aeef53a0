"""``python -m bench.operator``: run the simulated fleet (see :mod:`bench.operator`)."""

from __future__ import annotations

import argparse
import dataclasses
import signal
import tempfile
from pathlib import Path

from bench.operator.fleet import SMOKE, FleetConfig, Report, dump, run, table, with_code


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.operator", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="N=20 pools, 5 namespaces, 4 URLs")
    parser.add_argument("--pools", type=int, help="WorkerPools (and as many CronSchedules)")
    parser.add_argument("--namespaces", type=int)
    parser.add_argument("--urls", type=int, help="distinct Redis URLs (server x database)")
    parser.add_argument("--servers", type=int, help="real Redis servers behind the URLs")
    parser.add_argument("--poll-interval", type=int)
    parser.add_argument("--window", type=float, help="seconds of baseline and steady state")
    parser.add_argument("--replicas", type=int, help="operator processes (>1: elected)")
    parser.add_argument("--schedulers", type=int, help="Redis URLs given a real scheduler")
    parser.add_argument("--code", type=Path, help="run the operator from this checkout")
    parser.add_argument("--label", help="name of --code in the table")
    parser.add_argument(
        "--before", type=Path, help="also run this checkout (one replica: it has no election)"
    )
    parser.add_argument("--out", type=Path, help="write the reports as JSON here")
    return parser.parse_args(argv)


def config_from(args: argparse.Namespace) -> FleetConfig:
    cfg = SMOKE if args.smoke else FleetConfig()
    sizes = {
        "pools": args.pools,
        "namespaces": args.namespaces,
        "urls": args.urls,
        "servers": args.servers,
        "poll_interval": args.poll_interval,
        "window": args.window,
        "replicas": args.replicas,
        "schedulers": args.schedulers,
    }
    cfg = dataclasses.replace(cfg, **{k: v for k, v in sizes.items() if v is not None})
    return with_code(cfg, args.code, args.label)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so the control plane, Redis and operators are stopped


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    args = parse(argv)
    cfg = config_from(args)
    reports: list[Report] = []
    runs = [cfg]
    if args.before is not None:
        runs.insert(0, with_code(dataclasses.replace(cfg, replicas=1), args.before, args.label))
    for one in runs:
        # Kept: the operators' logs are the first thing to read when a run fails.
        workdir = tempfile.mkdtemp(prefix="bench-operator-")
        print(f"fleet: {one.pools} pools, {one.label}, {one.replicas} replica(s)", flush=True)
        print(f"operator logs in {workdir}", flush=True)
        report = run(one, Path(workdir))
        reports.append(report)
        if args.out is not None:
            dump(reports, args.out)  # after every run: a later failure loses nothing
        if len(runs) > 1:
            print(table([report]), flush=True)
    print(table(reports))
    for report in reports:
        print(report.config["label"], "top requests/s:", report.requests_by_kind)
        print(report.config["label"], "Redis commands/s:", report.redis_by_command)
        if report.failover_requests:
            print(report.config["label"], "failover requests:", report.failover_requests)
        for note in report.notes:
            print("note:", note)
    if args.out is not None:
        dump(reports, args.out)
    return 0


raise SystemExit(main())

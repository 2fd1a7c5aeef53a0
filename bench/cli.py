"""``python -m bench``: run the scenarios against Bananas and its peers.

The run, in order: prepare the environments the selected systems need
(:mod:`bench.envs`), start a private Redis (:mod:`bench.redis_server`), ask
every adapter for its versions (a system whose environment or adapter fails
is skipped with the reason), then run each scenario for each system, one
progress line per system, and end with the Markdown summary, the Bananas ÷
peer ratios, and a JSON record in ``bench/results/<timestamp>.json``. Adapter
logs go to ``bench/results/<timestamp>-logs/``.

Every child process is killed on the way out, including on Ctrl-C, SIGTERM
and errors. The exit status is 0 when every scenario that ran succeeded, 1
when one failed (its error is in the tables and the JSON), 2 on bad
arguments, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import signal
import sys
import time
import traceback
from pathlib import Path
from types import FrameType
from typing import Any

from bench import envs as envs_module
from bench import report
from bench.config import FULL, QUICK, REPO_DIR, RESULTS_DIR, Sizes
from bench.procs import AdapterError, ProcessGroup
from bench.redis_server import PrivateRedis
from bench.scenarios import ALIASES, SCENARIOS, Context, Scenario
from bench.systems import CATALOGUE, ORDER, System

INFO_TIMEOUT_S = 60.0


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run (a few minutes)")
    parser.add_argument(
        "--systems", type=_csv, default=list(ORDER), help=f"comma list from {','.join(ORDER)}"
    )
    parser.add_argument(
        "--scenarios",
        type=_csv,
        default=list(SCENARIOS),
        help=f"comma list from {','.join([*SCENARIOS, *ALIASES])}",
    )
    parser.add_argument("--crash-timeout", type=float, help="seconds to wait for crashed jobs")
    parser.add_argument("--output", type=Path, help="JSON path (default bench/results/<ts>.json)")
    parser.add_argument("--list", action="store_true", help="list systems and scenarios, then exit")
    args = parser.parse_args(argv)
    unknown = [s for s in args.systems if s not in CATALOGUE]
    if unknown:
        parser.error(f"unknown systems: {', '.join(unknown)}")
    args.scenarios = [ALIASES.get(s, s) for s in args.scenarios]
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(unknown)}")
    # Keep the canonical order (drain before latency) whatever the flag's order.
    args.systems = [s for s in ORDER if s in args.systems]
    args.scenarios = [s for s in SCENARIOS if s in args.scenarios]
    return args


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _short_versions(system: System, versions: dict[str, str]) -> str:
    main = versions.get(system.name) or versions.get("taskiq-redis") or "?"
    client = versions.get("redis") or versions.get("go-redis")
    return f"{system.name} {main}" + (f", redis client {client}" if client else "")


class Run:
    """One invocation: its sizes, systems, scenarios, processes and results."""

    def __init__(self, args: argparse.Namespace) -> None:
        sizes = QUICK if args.quick else FULL
        if args.crash_timeout:
            sizes = dataclasses.replace(sizes, crash_timeout_s=args.crash_timeout)
        self.sizes: Sizes = sizes
        self.quick: bool = args.quick
        self.systems = [CATALOGUE[name] for name in args.systems]
        self.scenarios: list[Scenario] = [SCENARIOS[name] for name in args.scenarios]
        self.stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.json_path: Path = args.output or RESULTS_DIR / f"{self.stamp}.json"
        self.log_dir = RESULTS_DIR / f"{self.stamp}-logs"
        self.group = ProcessGroup(self.log_dir)
        self.redis = PrivateRedis(self.log_dir / "redis")
        self.versions: dict[str, dict[str, str]] = {}
        self.skipped: dict[str, str] = {}
        self.results: report.Results = {}
        self.seconds: dict[str, dict[str, float]] = {}
        self.failures = 0
        self.started = time.time()

    def prepare(self) -> Context:
        needed = {s.env for s in self.systems}
        envs = envs_module.prepare(needed, say=lambda line: print(f"  {line}", flush=True))
        for system in self.systems:
            error = envs[system.env].error
            if error:
                self.skipped[system.name] = f"environment {system.env}: {error}"
        self.redis.start()
        print(
            f"Redis: {self.redis.name} {self.redis.version} ({self.redis.binary}) "
            f"on {self.redis.url}",
            flush=True,
        )
        ctx = Context(sizes=self.sizes, redis=self.redis, group=self.group, envs=envs)
        for system in self.systems:
            self._info(ctx, system)
        return ctx

    def _info(self, ctx: Context, system: System) -> None:
        if system.name in self.skipped:
            print(f"  {system.name:<9} skipped: {self.skipped[system.name]}", flush=True)
            return
        env = ctx.envs[system.env]
        child = self.group.spawn(
            f"{system.name}-info",
            env.argv(system.name, "info", "{}"),
            envs_module.adapter_env(),
            REPO_DIR,
        )
        try:
            info = child.wait_for(["info"], INFO_TIMEOUT_S)
            self.versions[system.name] = dict(info["versions"])
            versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
            print(f"  {system.name:<9} {versions}; {system.model}", flush=True)
        except AdapterError as exc:
            self.skipped[system.name] = str(exc).splitlines()[0]
            print(f"  {system.name:<9} skipped: {self.skipped[system.name]}", flush=True)
        finally:
            child.stop()

    def run_scenario(self, ctx: Context, scenario: Scenario) -> None:
        print(f"\n== {scenario.name}: {scenario.title}", flush=True)
        print(f"   {scenario.describe(self.sizes)}", flush=True)
        entries = self.results.setdefault(scenario.name, {})
        for system in self.systems:
            reason = self.skipped.get(system.name) or scenario.skip_reason(system, self.sizes)
            if reason:
                entries[system.name] = {"skipped": reason}
                print(f"  {system.name:<9} skipped: {reason}", flush=True)
                continue
            label = f"{system.name:<9} c={system.concurrency:<2}"
            versions = _short_versions(system, self.versions.get(system.name, {}))
            begin = time.monotonic()
            try:
                entries[system.name] = scenario.run(ctx, system)
                line = scenario.headline(entries[system.name])
            except Exception as exc:  # one system failing must not stop the others
                self.failures += 1
                traceback.print_exc(file=(self.log_dir / "driver-errors.log").open("a"))
                entries[system.name] = {"error": f"{type(exc).__name__}: {exc}"}
                line = f"ERROR {type(exc).__name__}: {exc}"
            finally:
                self.group.kill_all()
            took = time.monotonic() - begin
            self.seconds.setdefault(scenario.name, {})[system.name] = took
            print(f"  {label} [{versions}] {line} ({took:.1f} s)", flush=True)

    def finish(self) -> None:
        names = [s.name for s in self.systems]
        counts = self.sizes.memory_counts
        summary = report.summary_markdown(self.results, names, counts)
        ratios_md = report.ratios_markdown(self.results, names, counts)
        print("\n## Summary\n")
        print(summary)
        print("\n## Ratios (bananas ÷ peer, same run; see ↑/↓ for which way is better)\n")
        print(ratios_md)
        elapsed = time.time() - self.started
        report.write_json(self.json_path, self.record(elapsed, names))
        print(f"\nJSON: {self.json_path}\nLogs: {self.log_dir}\nTotal: {elapsed:.0f} s", flush=True)

    def record(self, elapsed: float, names: list[str]) -> dict[str, Any]:
        return {
            "started": datetime.datetime.fromtimestamp(self.started).isoformat(),
            "seconds": elapsed,
            "quick": self.quick,
            "host": {
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "loadavg_at_end": os.getloadavg(),
                "python": platform.python_version(),
            },
            "redis": {"server": self.redis.name, "version": self.redis.version},
            "sizes": dataclasses.asdict(self.sizes),
            "systems": {
                s.name: {
                    **dataclasses.asdict(s),
                    "versions": self.versions.get(s.name, {}),
                    "skipped": self.skipped.get(s.name),
                }
                for s in self.systems
            },
            "results": self.results,
            "scenario_seconds": self.seconds,
            "ratios": report.ratios(self.results, names, self.sizes.memory_counts),
        }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the process exit status."""
    args = parse_args(argv)
    if args.list:
        for system in CATALOGUE.values():
            print(f"{system.name:<9} {system.env:<8} {system.model}")
        for scenario in SCENARIOS.values():
            print(f"{scenario.name:<9} {scenario.title}")
        return 0
    run = Run(args)
    previous = signal.signal(signal.SIGTERM, _sigterm)
    mode = "quick" if run.quick else "full"
    print(f"Bananas benchmark ({mode}): {', '.join(s.name for s in run.systems)}", flush=True)
    try:
        ctx = run.prepare()
        for scenario in run.scenarios:
            run.run_scenario(ctx, scenario)
        run.finish()
    except KeyboardInterrupt:
        print("\ninterrupted: stopping every child process", file=sys.stderr, flush=True)
        return 130
    finally:
        run.group.kill_all()
        run.redis.stop()
        signal.signal(signal.SIGTERM, previous)
    return 1 if run.failures else 0

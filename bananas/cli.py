"""The ``bananas`` command.

Exit codes scripts can rely on:

- 0: done (for ``result``/``submit --wait``: the job completed);
- 1: the thing asked about is not there or did not succeed (no such job, job failed,
  wait timed out, DLQ entry missing);
- 2: bad usage or configuration (the message names the flag or variable);
- 3: Redis could not be reached.

Every flag of ``worker``/``scheduler`` has an environment variable (the seed's names);
a flag wins over its variable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from bananas.client import Client
from bananas.config import ENV_VARS, Settings, WorkerMode, parse_duration
from bananas.errors import BananasConnectionError, BananasError, ConfigError, InvalidJobError
from bananas.models import PRIORITY_ORDER, JobResult, Priority, Schedule

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


def _duration_arg(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _csv(text: str) -> str:
    return text


def _add_runtime_flags(p: argparse.ArgumentParser) -> None:
    def env(name: str) -> str:
        return f"(env {ENV_VARS[name]})"

    p.add_argument("--app", help=f"handler module, 'module' or 'module:registry' {env('app')}")
    p.add_argument("--redis-url", help=f"Redis URL {env('redis_url')}")
    p.add_argument("--concurrency", type=int, help=f"jobs at once {env('concurrency')}")
    p.add_argument(
        "--routing-keys", type=_csv, help=f"comma list, served in order {env('routing_keys')}"
    )
    p.add_argument("--priorities", type=_csv, help=f"comma list {env('priorities')}")
    p.add_argument("--job-types", type=_csv, help=f"handler names to run {env('job_types')}")
    p.add_argument("--mode", choices=[m.value for m in WorkerMode], help=env("mode"))
    p.add_argument("--job-timeout", type=_duration_arg, help=f"e.g. 30s, 5m {env('job_timeout')}")
    p.add_argument("--max-retries", type=int, help=env("max_retries"))
    p.add_argument(
        "--shutdown-timeout",
        type=_duration_arg,
        help=f"drain grace after SIGTERM {env('shutdown_timeout')}",
    )
    p.add_argument("--lease-duration", type=_duration_arg, help=env("lease_duration"))
    p.add_argument("--scheduler-interval", type=_duration_arg, help=env("scheduler_interval"))
    p.add_argument("--metrics-port", type=int, help=f"0 turns it off {env('metrics_port')}")
    p.add_argument(
        "--leader-election", choices=["redis", "kubernetes"], help=env("leader_election")
    )
    p.add_argument("--log-level", help=env("log_level"))
    p.add_argument("--log-format", choices=["text", "json"], help=env("log_format"))


def _runtime_settings(args: argparse.Namespace, **forced: Any) -> Settings:
    base = Settings.from_env()
    env = {}
    if args.routing_keys:
        env["WORKER_ROUTING_KEYS"] = args.routing_keys
    if args.priorities:
        env["WORKER_PRIORITIES"] = args.priorities
    if args.job_types:
        env["WORKER_JOB_TYPES"] = args.job_types
    if args.log_level:
        env["LOG_LEVEL"] = args.log_level
    parsed = Settings.from_env(env) if env else Settings()
    changes: dict[str, Any] = dict(
        app=args.app,
        redis_url=args.redis_url,
        concurrency=args.concurrency,
        routing_keys=parsed.routing_keys if args.routing_keys else None,
        priorities=parsed.priorities if args.priorities else None,
        job_types=parsed.job_types if args.job_types else None,
        mode=WorkerMode(args.mode) if args.mode else None,
        job_timeout=args.job_timeout,
        max_retries=args.max_retries,
        shutdown_timeout=args.shutdown_timeout,
        lease_duration=args.lease_duration,
        scheduler_interval=args.scheduler_interval,
        metrics_port=args.metrics_port,
        leader_election=args.leader_election,
        log_level=parsed.log_level if args.log_level else None,
        log_format=args.log_format,
    )
    # What the command forces (``scheduler``: mode=scheduler-only) wins over --mode / env;
    # passing it as a second ``mode=`` keyword was a TypeError that stopped every scheduler.
    settings = base.with_changes(**{**changes, **forced})
    if settings.concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    settings.check()
    return settings


def cmd_worker(args: argparse.Namespace, **forced: Any) -> int:
    from bananas.worker_runtime.logs import configure_logging
    from bananas.worker_runtime.registry import Registry
    from bananas.worker_runtime.runner import build_worker, load_registry, serve

    settings = _runtime_settings(args, **forced)
    configure_logging(settings.log_level, settings.log_format)
    if settings.mode is WorkerMode.SCHEDULER_ONLY and not settings.app:
        # A scheduler needs no handlers: it fires the schedules registered in Redis.
        registry = Registry()
    else:
        registry = load_registry(settings.app)
    worker = build_worker(registry, settings)
    asyncio.run(serve(worker))
    if threading.active_count() > 1:
        # A sync handler that overran its deadline still holds a thread (its job was
        # already handed back): do not let it keep the drained process alive.
        logging.shutdown()
        sys.stdout.flush()
        os._exit(EXIT_OK)
    return EXIT_OK


def cmd_scheduler(args: argparse.Namespace) -> int:
    return cmd_worker(args, mode=WorkerMode.SCHEDULER_ONLY)


def _client(args: argparse.Namespace) -> Client:
    settings = Settings.from_env()
    return Client(
        args.redis_url or settings.redis_url, prefix=settings.prefix, **settings.redis_options
    )


def _print(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def cmd_submit(args: argparse.Namespace) -> int:
    try:
        payload = json.loads(args.payload) if args.payload else None
    except json.JSONDecodeError as exc:
        raise InvalidJobError(f"--payload is not JSON: {exc}") from None
    with _client(args) as client:
        options: dict[str, Any] = {
            "priority": args.priority,
            "routing_key": args.routing_key,
            "description": args.description or "",
            "max_retries": args.max_retries,
        }
        if args.wait is not None:
            result = client.submit_and_wait(
                args.name,
                payload,
                timeout=args.wait,
                delay=args.delay,
                job_id=args.job_id,
                **options,
            )
            _print(result.model_dump(mode="json"))
            return EXIT_OK if result.is_success() else EXIT_FAILED
        job_id = client.submit(args.name, payload, delay=args.delay, job_id=args.job_id, **options)
        print(job_id)
    return EXIT_OK


def cmd_job(args: argparse.Namespace) -> int:
    with _client(args) as client:
        job = client.get_job(args.job_id, args.routing_key)
    if job is None:
        print(f"no job {args.job_id}", file=sys.stderr)
        return EXIT_FAILED
    _print(job.model_dump(mode="json"))
    return EXIT_OK


def cmd_result(args: argparse.Namespace) -> int:
    result: JobResult | None
    with _client(args) as client:
        if args.wait is not None:
            result = client.wait_for_result(args.job_id, args.wait, args.routing_key)
        else:
            result = client.get_result(args.job_id, args.routing_key)
    if result is None:
        print(f"no result for {args.job_id} yet", file=sys.stderr)
        return EXIT_FAILED
    _print(result.model_dump(mode="json"))
    return EXIT_OK if result.is_success() else EXIT_FAILED


def cmd_queues(args: argparse.Namespace) -> int:
    with _client(args) as client:
        stats = client.all_queue_stats()
    if args.json:
        _print([s.model_dump(mode="json") for s in stats])
        return EXIT_OK
    head = f"{'ROUTING KEY':<20}" + "".join(f"{p.value.upper():>8}" for p in PRIORITY_ORDER)
    print(head + f"{'SCHEDULED':>11}{'IN FLIGHT':>11}{'DEAD':>8}{'OLDEST':>10}  PAUSED")
    for s in stats:
        oldest = "-" if s.oldest_age is None else f"{s.oldest_age:.1f}s"
        print(
            f"{s.routing_key:<20}"
            + "".join(f"{s.depth[p]:>8}" for p in PRIORITY_ORDER)
            + f"{s.scheduled:>11}{s.in_flight:>11}{s.dead:>8}{oldest:>10}  {_paused_text(s.paused)}"
        )
    return EXIT_OK


# -- pause / resume ---------------------------------------------------------------------


def _paused_text(paused: Sequence[Priority]) -> str:
    if not paused:
        return "-"
    return "all" if len(paused) == len(PRIORITY_ORDER) else ",".join(p.value for p in paused)


def cmd_pause(args: argparse.Namespace, *, paused: bool = True) -> int:
    priorities = args.priority or None
    with _client(args) as client:
        if paused:
            now = client.pause(args.routing_key, priorities)
        else:
            now = client.resume(args.routing_key, priorities)
    print(f"{args.routing_key}: paused {_paused_text(now)}")
    return EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    return cmd_pause(args, paused=False)


def _add_pause_commands(
    add: Callable[[str, Callable[..., int], str], argparse.ArgumentParser],
) -> None:
    for name, fn, text in (
        (
            "pause",
            cmd_pause,
            "Pause a routing key: workers stop fetching it; submits still succeed.",
        ),
        ("resume", cmd_resume, "Resume a paused routing key: idle workers are woken at once."),
    ):
        p = add(name, fn, text)
        p.add_argument("routing_key", metavar="ROUTE")
        p.add_argument(
            "--priority",
            action="append",
            choices=[x.value for x in PRIORITY_ORDER],
            help="only this priority (repeatable; default: all)",
        )


# -- end pause / resume -----------------------------------------------------------------


def cmd_workers(args: argparse.Namespace) -> int:
    with _client(args) as client:
        workers = client.workers()
    if args.json:
        _print([w.model_dump(mode="json") for w in workers])
        return EXIT_OK
    print(f"{'WORKER':<40}{'ROUTES':<20}{'CONC':>6}{'BUSY':>6}{'DONE':>10}{'FAILED':>8}  SEEN")
    for w in workers:
        print(
            f"{w.id:<40}{','.join(w.routing_keys):<20}{w.concurrency:>6}{w.in_flight:>6}"
            f"{w.processed:>10}{w.failed:>8}  {w.last_seen:%H:%M:%S}"
        )
    return EXIT_OK


def _progress(label: str, total: int) -> Callable[[int], None]:
    def show(done: int) -> None:
        width = 30
        filled = width if total == 0 else min(width, width * done // max(total, 1))
        print(
            f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
            end="",
            file=sys.stderr,
            flush=True,
        )

    return show


def cmd_dlq(args: argparse.Namespace) -> int:
    with _client(args) as client:
        rk = args.routing_key
        if args.action == "list":
            rows = client.dead_letters(rk, args.offset, args.count)
            for row in rows:
                name = row.job.name if row.job else "<unreadable>"
                print(
                    f"{row.job_id}  {name}  attempts={row.attempts}  "
                    f"{row.failed_at:%Y-%m-%d %H:%M:%S}  {row.error}"
                )
            return EXIT_OK
        if args.action == "requeue":
            if args.job_id:
                ok = client.requeue_dead(args.job_id, rk)
                print("requeued" if ok else f"{args.job_id} is not in the dead-letter queue")
                return EXIT_OK if ok else EXIT_FAILED
            total = client.queue_stats(rk).dead
            moved = client.requeue_all_dead(rk, progress=_progress("requeue", total))
            print(f"\nrequeued {moved} job(s)")
            return EXIT_OK
        total = client.queue_stats(rk).dead
        if not args.yes:
            print(f"this deletes {total} dead-lettered job(s) of {rk}; add --yes", file=sys.stderr)
            return EXIT_USAGE
        removed = client.purge_dead(rk, progress=_progress("purge", total))
        print(f"\npurged {removed} job(s)")
    return EXIT_OK


def cmd_schedules(args: argparse.Namespace) -> int:
    with _client(args) as client:
        if args.action == "add":
            payload = json.loads(args.payload) if args.payload else None
            client.register_schedule(
                Schedule(
                    id=args.id,
                    cron=args.cron,
                    job=args.job,
                    payload=payload,
                    timezone=args.timezone,
                    routing_key=args.routing_key,
                    priority=args.priority,
                )
            )
            print(f"registered {args.id}")
            return EXIT_OK
        if args.action == "remove":
            ok = client.unregister_schedule(args.id)
            print("removed" if ok else f"no schedule {args.id}")
            return EXIT_OK if ok else EXIT_FAILED
        schedules = client.schedules()
        print(f"{'ID':<28}{'CRON':<16}{'TZ':<18}{'JOB':<20}{'RUNS':>6}  NEXT")
        for s in schedules:
            st = client.schedule_status(s.id)
            nxt = st.next_schedule_time.isoformat() if st and st.next_schedule_time else "-"
            print(
                f"{s.id:<28}{s.cron:<16}{s.timezone:<18}{s.job:<20}"
                f"{st.run_count if st else 0:>6}  {nxt}"
            )
    return EXIT_OK


def cmd_dev(args: argparse.Namespace) -> int:
    from bananas.worker_runtime.dev import run_dev

    return run_dev(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bananas",
        description="Bananas: a Redis-backed distributed task queue.",
        epilog="Exit codes: 0 ok, 1 not found or failed, 2 usage/config error, "
        "3 Redis unreachable.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Callable[..., int], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=fn)
        if name not in ("worker", "scheduler", "dev"):
            p.add_argument("--redis-url", help="Redis URL (env REDIS_URL)")
        return p

    _add_runtime_flags(add("worker", cmd_worker, "Run a worker process."))
    _add_runtime_flags(
        add(
            "scheduler",
            cmd_scheduler,
            "Run a scheduler: delayed jobs, retries, cron (leader elected).",
        )
    )
    p = add("submit", cmd_submit, "Submit a job; prints its id.")
    p.add_argument("name")
    p.add_argument("--payload", help="JSON payload")
    p.add_argument("--priority", default="normal", choices=[x.value for x in PRIORITY_ORDER])
    p.add_argument("--routing-key", default="default")
    p.add_argument("--description")
    p.add_argument("--delay", type=_duration_arg, help="run after this long, e.g. 10m")
    p.add_argument("--max-retries", type=int)
    p.add_argument("--job-id", help="idempotency key: the same id runs once")
    p.add_argument(
        "--wait", type=_duration_arg, metavar="TIMEOUT", help="wait for the result and print it"
    )
    for name, fn, text in (
        ("job", cmd_job, "Show one job."),
        ("result", cmd_result, "Show a job's result."),
    ):
        p = add(name, fn, text)
        p.add_argument("job_id")
        p.add_argument("--routing-key")
        if name == "result":
            p.add_argument("--wait", type=_duration_arg, metavar="TIMEOUT")
    for name, fn, text in (
        ("queues", cmd_queues, "Depth per routing key and priority."),
        ("workers", cmd_workers, "Live workers and their counts."),
    ):
        add(name, fn, text).add_argument("--json", action="store_true")
    _add_pause_commands(add)
    p = add("dlq", cmd_dlq, "List, requeue or purge the dead-letter queue.")
    p.add_argument("action", choices=["list", "requeue", "purge"])
    p.add_argument("job_id", nargs="?", help="requeue only this job")
    p.add_argument("--routing-key", default="default")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--count", type=int, default=50)
    p.add_argument("--yes", action="store_true", help="confirm purge")
    p = add("schedules", cmd_schedules, "List, add or remove cron schedules in Redis.")
    p.add_argument("action", nargs="?", default="list", choices=["list", "add", "remove"])
    p.add_argument("--id")
    p.add_argument("--cron")
    p.add_argument("--job")
    p.add_argument("--payload")
    p.add_argument("--timezone", default="UTC")
    p.add_argument("--routing-key", default="default")
    p.add_argument("--priority", default="normal")
    p = add("dev", cmd_dev, "Run Redis (embedded Valkey), a worker and a scheduler in one go.")
    p.add_argument("--app", help="handler module (default: the demo's)")
    p.add_argument("--demo", action="store_true", help="run the demo")
    p.add_argument(
        "--data-dir", default=".bananas-dev", help="where the embedded server keeps data"
    )
    p.add_argument("--port", type=int, default=0, help="embedded server port (0: a free one)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except BananasConnectionError as exc:
        print(f"bananas: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except (ConfigError, InvalidJobError, ValueError) as exc:
        print(f"bananas: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BananasError as exc:
        print(f"bananas: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

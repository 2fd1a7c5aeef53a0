"""``worker``, ``scheduler`` and ``dev``: the commands that run things.

Every flag of ``worker``/``scheduler`` has an environment variable (the seed's names)
and the flag wins. ``scheduler`` only takes the flags that mean something to a
scheduler; a worker-only flag (``--concurrency``...) is a usage error, not ignored.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import threading
from typing import TYPE_CHECKING, Any

from bananas.cli.exits import EXIT_OK
from bananas.cli.jobs import Register
from bananas.cli.options import duration_arg, non_negative_int, positive_int
from bananas.config import ENV_VARS, Settings, WorkerMode
from bananas.errors import ConfigError

if TYPE_CHECKING:
    from bananas.worker_runtime.registry import Registry

log = logging.getLogger("bananas.worker")

_MODES = (
    "default: run jobs, promote and reap for its routing keys, cron if ENABLE_SCHEDULER; "
    "thin: only run jobs; specialized: like default, refuses the 'default' routing key; "
    "job-specialized: only --job-types; scheduler-only: no jobs, promote/reap every key, cron"
)


def _env(name: str) -> str:
    return f"env {ENV_VARS[name]}"


def _add_common_flags(p: argparse.ArgumentParser) -> None:
    """Flags a worker and a scheduler share."""
    defaults = Settings()
    p.add_argument(
        "--redis-url",
        metavar="URL",
        help=f"Redis to serve ({_env('redis_url')}, default {defaults.redis_url})",
    )
    p.add_argument(
        "--shutdown-timeout",
        type=duration_arg,
        metavar="DURATION",
        help=f"drain grace after SIGTERM ({_env('shutdown_timeout')}, default 30s)",
    )
    p.add_argument(
        "--lease-duration",
        type=duration_arg,
        metavar="DURATION",
        help=f"lease of a fetched job, and of the cron leader "
        f"({_env('lease_duration')}, default 10s)",
    )
    p.add_argument(
        "--scheduler-interval",
        type=duration_arg,
        metavar="DURATION",
        help=f"longest scheduler sleep ({_env('scheduler_interval')}, default 1s)",
    )
    p.add_argument(
        "--metrics-port",
        type=non_negative_int,
        metavar="PORT",
        help=f"/metrics, /healthz, /readyz; 0 turns it off "
        f"({_env('metrics_port')}, default {defaults.metrics_port})",
    )
    p.add_argument(
        "--leader-election",
        choices=["redis", "kubernetes"],
        help=f"how cron leaders are elected ({_env('leader_election')}, default redis)",
    )
    p.add_argument(
        "--log-level",
        metavar="LEVEL",
        help=f"DEBUG, INFO, WARNING, ERROR ({_env('log_level')}, default INFO)",
    )
    p.add_argument(
        "--log-format",
        choices=["text", "json"],
        help=f"json: one object per line ({_env('log_format')}, default text)",
    )


def _add_worker_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--app",
        metavar="MODULE[:ATTR]",
        help=f"the handler module, e.g. tasks or tasks:registry ({_env('app')})",
    )
    _add_common_flags(p)
    p.add_argument(
        "--concurrency",
        type=positive_int,
        metavar="N",
        help=f"jobs run at once ({_env('concurrency')}, default 10)",
    )
    p.add_argument(
        "--routing-keys",
        metavar="A,B",
        help=f"routing keys served, in order ({_env('routing_keys')}, default default)",
    )
    p.add_argument(
        "--priorities",
        metavar="A,B",
        help=f"priorities served ({_env('priorities')}, default high,normal,low)",
    )
    p.add_argument(
        "--job-types",
        metavar="A,B",
        help=f"only these handlers ({_env('job_types')}, default all registered)",
    )
    p.add_argument(
        "--mode",
        choices=[m.value for m in WorkerMode],
        help=f"{_MODES} ({_env('mode')}, default default)",
    )
    p.add_argument(
        "--job-timeout",
        type=duration_arg,
        metavar="DURATION",
        help=f"time limit of a job without its own ({_env('job_timeout')}, default 5m)",
    )
    p.add_argument(
        "--max-retries",
        type=non_negative_int,
        metavar="N",
        help=f"retry budget of jobs this process submits ({_env('max_retries')}, default 3)",
    )
    p.add_argument(
        "--processes",
        metavar="N|auto",
        help=f"worker processes under one supervisor; auto: one per CPU ({_env('processes')}, "
        "default 1)",
    )
    p.add_argument(
        "--max-jobs-per-child",
        type=non_negative_int,
        metavar="N",
        help=f"replace a worker process after this many jobs ({_env('max_jobs_per_child')}; "
        "default never)",
    )
    p.add_argument(
        "--max-memory-per-child",
        type=non_negative_int,
        metavar="MIB",
        help=f"replace a worker process past this resident size "
        f"({_env('max_memory_per_child')}; default never)",
    )


def _runtime_settings(args: argparse.Namespace, **forced: Any) -> Settings:
    base = Settings.from_env()
    env = {}
    for flag, var in (
        ("routing_keys", "WORKER_ROUTING_KEYS"),
        ("priorities", "WORKER_PRIORITIES"),
        ("job_types", "WORKER_JOB_TYPES"),
        ("log_level", "LOG_LEVEL"),
        ("processes", "WORKER_PROCESSES"),
    ):
        if getattr(args, flag, None):
            env[var] = getattr(args, flag)
    parsed = Settings.from_env(env) if env else Settings()
    given = {k: v for k, v in vars(args).items() if v is not None}
    changes: dict[str, Any] = {
        name: given.get(name)
        for name in (
            "app",
            "redis_url",
            "concurrency",
            "job_timeout",
            "max_retries",
            "shutdown_timeout",
            "lease_duration",
            "scheduler_interval",
            "metrics_port",
            "leader_election",
            "log_format",
            "max_jobs_per_child",
            "max_memory_per_child",
        )
    }
    for name in ("routing_keys", "priorities", "job_types", "log_level", "processes"):
        changes[name] = getattr(parsed, name) if given.get(name) else None
    changes["mode"] = WorkerMode(given["mode"]) if given.get("mode") else None
    # What the command forces (``scheduler``: mode=scheduler-only) wins over --mode / env.
    settings = base.with_changes(**{**changes, **forced})
    settings.check()
    return settings


def cmd_worker(args: argparse.Namespace, **forced: Any) -> int:
    from bananas.worker_runtime.child import ChildLink
    from bananas.worker_runtime.logs import configure_logging
    from bananas.worker_runtime.registry import Registry
    from bananas.worker_runtime.runner import build_worker, load_registry, serve
    from bananas.worker_runtime.supervisor import run_supervisor, wants_supervisor

    settings = _runtime_settings(args, **forced)
    configure_logging(settings.log_level, settings.log_format, log_jobs=settings.log_jobs)
    link = ChildLink.from_env()  # set only in a process a supervisor started
    if link is None and wants_supervisor(settings):
        # The handler module is loaded (and checked) by each worker process; one that
        # refuses to start stops the group with exit 2.
        return run_supervisor(settings)
    if settings.mode is WorkerMode.SCHEDULER_ONLY and not settings.app:
        # A scheduler needs no handlers: it fires the schedules registered in Redis.
        registry = Registry()
    else:
        registry = load_registry(settings.app)
    check_runnable(registry, settings)
    log.info("%s", describe(registry, settings))
    if link is None:
        worker = build_worker(registry, settings)
    else:  # a supervised child: probes and metrics on a private loopback port
        worker = build_worker(registry, settings, metrics_host="127.0.0.1", metrics_port=0)
    asyncio.run(serve(worker, link))
    if threading.active_count() > 1:
        # A sync handler that overran its deadline still holds a thread (its job was
        # already handed back): do not let it keep the drained process alive.
        logging.shutdown()
        sys.stdout.flush()
        os._exit(EXIT_OK)
    return EXIT_OK


def check_runnable(registry: Registry, settings: Settings) -> None:
    """Refuse (ConfigError, exit 2) a worker that could run nothing it fetches."""
    if settings.mode is WorkerMode.SCHEDULER_ONLY:
        return
    app = settings.app or "the handler module"
    names = registry.names()
    if not names:
        raise ConfigError(
            f"{app} registers no handlers: every job this worker fetched would fail "
            "(register some with @registry.handler, or run `bananas scheduler`)"
        )
    missing = [n for n in settings.job_types if registry.get(n) is None]
    if missing:
        raise ConfigError(
            f"WORKER_JOB_TYPES names {', '.join(missing)}, which {app} has no handler for "
            f"(it has: {', '.join(names)})"
        )


def describe(registry: Registry, settings: Settings) -> str:
    """The start-up line: what this process serves."""
    if settings.mode is WorkerMode.SCHEDULER_ONLY:
        served = "no jobs (scheduler-only)"
    else:
        names = [n for n in registry.names() if not settings.job_types or n in settings.job_types]
        served = f"{len(names)} handler(s) [{', '.join(names)}]"
        served += f" on routing keys [{', '.join(settings.routing_keys)}]"
    schedules = [f"{s.id} ({s.cron} {s.timezone})" for s in registry.schedules]
    return f"serving {served}; schedules in code: [{', '.join(schedules) or 'none'}]"


def cmd_scheduler(args: argparse.Namespace) -> int:
    return cmd_worker(args, mode=WorkerMode.SCHEDULER_ONLY)


def cmd_dev(args: argparse.Namespace) -> int:
    from bananas.worker_runtime.dev import run_dev

    return run_dev(args)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from bananas.dashboard.cli import run

    return run(args)


def register(add: Register) -> None:
    """Add this module's subcommands with ``add(name, function, help)``."""
    _add_worker_flags(add("worker", cmd_worker, "Run a worker until SIGTERM (then drain)."))
    p = add(
        "scheduler",
        cmd_scheduler,
        "Run a scheduler: promotes delayed jobs and retries and reaps leases of every "
        "routing key, and fires cron schedules as the elected leader. Runs no jobs.",
    )
    p.add_argument(
        "--app",
        metavar="MODULE[:ATTR]",
        help=f"a handler module whose registry.cron schedules to fire too "
        f"({_env('app')}; optional)",
    )
    _add_common_flags(p)
    p = add("dev", cmd_dev, "Run Redis (embedded Valkey), a worker and a scheduler in one go.")
    p.add_argument(
        "--app", metavar="MODULE[:ATTR]", help="your handler module (default: the demo's)"
    )
    p.add_argument("--demo", action="store_true", help="also run the demo client, then exit")
    p.add_argument(
        "--data-dir",
        default=".bananas-dev",
        metavar="DIR",
        help="where the embedded server keeps its data",
    )
    p.add_argument(
        "--port",
        type=non_negative_int,
        metavar="PORT",
        help="the embedded server's port (default: 6379, the other commands' "
        "default, or a free one when 6379 is taken; 0: a free one)",
    )
    from bananas.dashboard.cli import add_arguments as dashboard_arguments

    dashboard_arguments(add("dashboard", cmd_dashboard, "Serve the web dashboard."))

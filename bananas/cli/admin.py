"""``queues``, ``pause``/``resume``, ``workers``, ``dlq`` and ``schedules``: looking after
the queues."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from bananas.broker import DeadJob
from bananas.cli import render
from bananas.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from bananas.cli.jobs import Register
from bananas.cli.options import add_json, client, non_negative_int, positive_int, read_payload
from bananas.client import Client
from bananas.errors import InvalidJobError
from bananas.models import PRIORITY_ORDER, JobStatus, Priority, Schedule
from bananas.validation import validate_cron, validate_job_name, validate_routing_key, zone


def cmd_queues(args: argparse.Namespace) -> int:
    with client(args) as c:
        if args.forget:
            return _forget(c, args.forget)
        stats = c.all_queue_stats()
    if args.json:
        print(render.as_json([s.model_dump(mode="json") for s in stats]))
        return EXIT_OK
    header = ["ROUTING KEY", *(p.value.upper() for p in PRIORITY_ORDER)]
    header += ["SCHEDULED", "IN FLIGHT", "DEAD", "OLDEST", "PAUSED"]
    rows = [
        [
            s.routing_key,
            *(render.count(s.depth[p]) for p in PRIORITY_ORDER),
            render.count(s.scheduled),
            render.count(s.in_flight),
            render.count(s.dead),
            render.duration(s.oldest_age),
            _paused_text(s.paused),
        ]
        for s in stats
    ]
    print(render.table(header, rows, right=range(1, len(header) - 1)))
    return EXIT_OK


def _paused_text(paused: Sequence[Priority]) -> str:
    if not paused:
        return "-"
    return "all" if len(paused) == len(PRIORITY_ORDER) else ",".join(p.value for p in paused)


def cmd_pause(args: argparse.Namespace, *, paused: bool = True) -> int:
    priorities = args.priority or None
    with client(args) as c:
        now = (
            c.pause(args.routing_key, priorities)
            if paused
            else c.resume(args.routing_key, priorities)
        )
    print(f"{args.routing_key}: paused {_paused_text(now)}")
    return EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    return cmd_pause(args, paused=False)


def _register_pause(add: Register) -> None:
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


def _forget(c: Client, routing_key: str) -> int:
    if c.forget_route(routing_key):
        print(f"forgot {routing_key}")
        return EXIT_OK
    print(
        f"bananas: {routing_key} still holds jobs (or was never known); only an empty "
        "routing key can be forgotten",
        file=sys.stderr,
    )
    return EXIT_FAILED


def cmd_workers(args: argparse.Namespace) -> int:
    with client(args) as c:
        workers = c.workers()
    if args.json:
        print(render.as_json([w.model_dump(mode="json") for w in workers]))
        return EXIT_OK
    rows = []
    for w in workers:
        scheduler = w.mode == "scheduler-only"
        rows.append(
            [
                w.id,
                w.mode,
                "(all)" if scheduler else ",".join(w.routing_keys) or "-",
                "-" if scheduler else str(w.concurrency),
                "-" if scheduler else str(w.in_flight),
                render.count(w.processed),
                render.count(w.failed),
                "yes" if w.cron_leader else "-",
                render.when(w.last_seen),
                ",".join(w.running) or "-",
            ]
        )
    header = ["WORKER", "MODE", "ROUTES", "CONC", "BUSY", "DONE", "FAILED", "CRON LEADER"]
    header += ["SEEN", "RUNNING"]
    print(render.table(header, rows, right=(3, 4, 5, 6)))
    leaders = [w.id for w in workers if w.cron_leader]
    print(f"cron leader: {leaders[0] if leaders else 'none seen'}")
    return EXIT_OK


# -- dlq ----------------------------------------------------------------------------------


def _dead_routes(c: Client, routing_key: str | None) -> list[tuple[str, int]]:
    """(routing key, dead count) of the key given, else of every key holding dead jobs."""
    if routing_key is not None:
        return [(routing_key, c.queue_stats(routing_key).dead)]
    return [(s.routing_key, s.dead) for s in c.all_queue_stats() if s.dead]


def _dlq_page(c: Client, args: argparse.Namespace) -> tuple[list[tuple[str, DeadJob]], int]:
    rows: list[tuple[str, DeadJob]] = []
    total = 0
    for rk, dead in _dead_routes(c, args.routing_key):
        total += dead
        rows += [(rk, d) for d in c.dead_letters(rk, 0, args.offset + args.count)]
    rows.sort(key=lambda r: r[1].failed_at, reverse=True)
    return rows[args.offset : args.offset + args.count], total


def _dlq_list(c: Client, args: argparse.Namespace) -> int:
    page, total = _dlq_page(c, args)
    if args.json:
        data = [
            {
                "job_id": d.job_id,
                "routing_key": rk,
                "name": d.job.name if d.job else None,
                "attempts": d.attempts,
                "failed_at": d.failed_at.isoformat(),
                "error": d.error,
            }
            for rk, d in page
        ]
        print(render.as_json({"total": total, "dead": data}))
        return EXIT_OK
    rows = [
        [
            d.job_id,
            rk,
            d.job.name if d.job else "<unreadable record>",
            str(d.attempts),
            render.when(d.failed_at),
            render.first_line(d.error),
        ]
        for rk, d in page
    ]
    print(render.table(["ID", "ROUTING KEY", "NAME", "TRIES", "FAILED AT", "ERROR"], rows))
    print(render.showing(len(page), total, args.offset))
    return EXIT_OK


def _dead_route_of(c: Client, job_id: str, routing_key: str | None) -> str | None:
    """The routing key where ``job_id`` is dead-lettered, or None."""
    job = c.get_job(job_id, routing_key)
    if job is None or job.status is not JobStatus.FAILED:
        return None
    return job.routing_key


def _progress(label: str, total: int) -> Callable[[int], None]:
    def show(done: int) -> None:
        if not sys.stderr.isatty():
            return
        width = 30
        filled = width if total == 0 else min(width, width * done // max(total, 1))
        print(
            f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
            end="",
            file=sys.stderr,
            flush=True,
        )

    return show


def _dlq_requeue(c: Client, args: argparse.Namespace) -> int:
    if args.job_id:
        rk = _dead_route_of(c, args.job_id, args.routing_key)
        if rk is None or not c.requeue_dead(args.job_id, rk):
            print(f"bananas: {args.job_id} is not in the dead-letter queue", file=sys.stderr)
            return EXIT_FAILED
        print(f"requeued {args.job_id} on {rk}")
        return EXIT_OK
    moved = 0
    for rk, dead in _dead_routes(c, args.routing_key):
        moved += c.requeue_all_dead(rk, progress=_progress(f"requeue {rk}", dead))
    print(f"requeued {render.count(moved)} job(s)")
    return EXIT_OK


def _dlq_delete(c: Client, args: argparse.Namespace) -> int:
    if not args.job_id:
        print("bananas: dlq delete needs the job ID", file=sys.stderr)
        return EXIT_USAGE
    rk = _dead_route_of(c, args.job_id, args.routing_key)
    if rk is None or not c.delete_dead(args.job_id, rk):
        print(f"bananas: {args.job_id} is not in the dead-letter queue", file=sys.stderr)
        return EXIT_FAILED
    print(f"deleted {args.job_id} from the dead-letter queue of {rk}")
    return EXIT_OK


def _dlq_purge(c: Client, args: argparse.Namespace) -> int:
    routes = _dead_routes(c, args.routing_key)
    total = sum(n for _, n in routes)
    if not args.yes:
        where = args.routing_key or "every routing key"
        print(
            f"bananas: this deletes {render.count(total)} dead-lettered job(s) of {where}; "
            "add --yes",
            file=sys.stderr,
        )
        return EXIT_USAGE
    removed = 0
    for rk, dead in routes:
        removed += c.purge_dead(rk, progress=_progress(f"purge {rk}", dead))
    print(f"purged {render.count(removed)} job(s)")
    return EXIT_OK


def cmd_dlq(args: argparse.Namespace) -> int:
    actions = {
        "list": _dlq_list,
        "requeue": _dlq_requeue,
        "delete": _dlq_delete,
        "purge": _dlq_purge,
    }
    with client(args) as c:
        return actions[args.action](c, args)


# -- schedules ------------------------------------------------------------------------------

_SCHEDULE_FLAGS = {
    "id": "--id",
    "cron": "--cron",
    "job": "--job",
    "payload": "--payload",
    "timezone": "--timezone",
    "routing_key": "--routing-key",
    "priority": "--priority",
}


def _one_line(exc: ValidationError) -> str:
    """A pydantic error as ``--flag: message; --flag: message`` (no URLs, no dumps)."""
    parts = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        parts.append(f"{_SCHEDULE_FLAGS.get(field, field)}: {err['msg']}")
    return "; ".join(parts)


def _schedule_add(c: Client, args: argparse.Namespace) -> int:
    missing = [f for f in ("id", "cron", "job") if not getattr(args, f)]
    if missing:
        flags = ", ".join(_SCHEDULE_FLAGS[f] for f in missing)
        print(f"bananas: schedules add needs {flags}", file=sys.stderr)
        return EXIT_USAGE
    try:
        schedule = Schedule(
            id=args.id,
            cron=args.cron,
            job=args.job,
            payload=read_payload(args.payload),
            timezone=args.timezone,
            routing_key=args.routing_key,
            priority=args.priority,
        )
    except ValidationError as exc:
        raise InvalidJobError(_one_line(exc)) from None
    checks: list[tuple[str, Callable[[], object]]] = [
        ("--cron", lambda: validate_cron(schedule.cron)),
        ("--timezone", lambda: zone(schedule.timezone)),
        ("--routing-key", lambda: validate_routing_key(schedule.routing_key)),
        ("--job", lambda: validate_job_name(schedule.job)),
    ]
    for flag, check in checks:
        try:
            check()
        except InvalidJobError as exc:
            raise InvalidJobError(f"{flag}: {exc}") from None
    c.register_schedule(schedule)
    print(f"registered {args.id}")
    return EXIT_OK


def _schedule_remove(c: Client, args: argparse.Namespace) -> int:
    schedule_id = args.id or args.schedule_id
    if not schedule_id:
        print("bananas: schedules remove needs the schedule ID (or --id)", file=sys.stderr)
        return EXIT_USAGE
    if c.unregister_schedule(schedule_id):
        print(f"removed {schedule_id}")
        return EXIT_OK
    print(f"bananas: no schedule {schedule_id} in Redis", file=sys.stderr)
    return EXIT_FAILED


def _schedule_list(c: Client, args: argparse.Namespace) -> int:
    listed = c.all_schedules()
    if args.json:
        print(
            render.as_json(
                [
                    {
                        **s.model_dump(mode="json"),
                        "source": source,
                        "status": st.model_dump(mode="json") if st else None,
                    }
                    for s, source, st in listed
                ]
            )
        )
        return EXIT_OK
    rows = [
        [
            s.id,
            source,
            s.cron,
            s.timezone,
            s.job,
            s.routing_key,
            str(st.run_count if st else 0),
            render.when(st.last_schedule_time if st else None),
            render.when(st.next_schedule_time if st else None),
        ]
        for s, source, st in listed
    ]
    header = ["ID", "SOURCE", "CRON", "TZ", "JOB", "ROUTING KEY", "RUNS", "LAST", "NEXT"]
    print(render.table(header, rows, right=(6,)))
    return EXIT_OK


def cmd_schedules(args: argparse.Namespace) -> int:
    actions = {"list": _schedule_list, "add": _schedule_add, "remove": _schedule_remove}
    with client(args) as c:
        return actions[args.action](c, args)


def register(add: Register) -> None:
    """Add this module's subcommands with ``add(name, function, help)``."""
    p = add("queues", cmd_queues, "Depth per routing key and priority, scheduled, in flight, dead.")
    p.add_argument(
        "--forget", metavar="KEY", help="drop an empty routing key (a typo) from the list"
    )
    add_json(p)
    _register_pause(add)

    p = add("workers", cmd_workers, "Live workers and schedulers, from their heartbeats.")
    add_json(p)

    p = add("dlq", cmd_dlq, "The dead-letter queue: list, requeue, delete or purge.")
    p.add_argument(
        "action",
        choices=["list", "requeue", "delete", "purge"],
        help="list: newest first; requeue [ID]: back to the queue with a fresh retry budget; "
        "delete ID: drop one; purge --yes: drop all",
    )
    p.add_argument(
        "job_id",
        nargs="?",
        metavar="ID",
        help="the job to requeue or delete (requeue without it: all)",
    )
    p.add_argument("--routing-key", metavar="KEY", help="only this routing key (default: all)")
    p.add_argument(
        "--offset", type=non_negative_int, default=0, metavar="N", help="list: skip this many"
    )
    p.add_argument(
        "--count", type=positive_int, default=50, metavar="N", help="list: show at most this many"
    )
    p.add_argument("--yes", action="store_true", help="purge: confirm")
    add_json(p)

    p = add(
        "schedules",
        cmd_schedules,
        "Cron schedules: list every one the scheduler fires, add or remove those in Redis.",
    )
    p.add_argument(
        "action", nargs="?", default="list", choices=["list", "add", "remove"], help="what to do"
    )
    p.add_argument("schedule_id", nargs="?", metavar="ID", help="remove: the schedule's id")
    p.add_argument("--id", help="add/remove: the schedule's id")
    p.add_argument("--cron", metavar="EXPR", help="add: 5 fields, e.g. '*/15 * * * *'")
    p.add_argument("--job", metavar="NAME", help="add: the handler name each fire runs")
    p.add_argument(
        "--payload", metavar="JSON", help="add: the payload of each fire: JSON, @FILE or -"
    )
    p.add_argument(
        "--timezone",
        default="UTC",
        metavar="TZ",
        help="add: the zone the cron expression is read in",
    )
    p.add_argument(
        "--routing-key", default="default", metavar="KEY", help="add: where each fire's job goes"
    )
    p.add_argument(
        "--priority",
        default="normal",
        choices=[x.value for x in PRIORITY_ORDER],
        help="add: each fire's job priority",
    )
    add_json(p)

"""``submit``, ``job``, ``result``, ``cancel``, ``jobs`` and ``run-now``: one job at a time."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bananas.broker import JOB_STATES
from bananas.cli import render
from bananas.cli.exits import EXIT_FAILED, EXIT_OK
from bananas.cli.options import (
    add_json,
    client,
    duration_arg,
    non_negative_int,
    positive_duration_arg,
    positive_int,
    read_payload,
    time_arg,
)
from bananas.client import Client
from bananas.errors import JobNotFoundError
from bananas.models import PRIORITY_ORDER, Job, JobResult, WorkflowStatus

Register = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def _print_result(result: JobResult, as_json: bool) -> int:
    print(render.as_json(result.model_dump(mode="json")) if as_json else render.result_view(result))
    return EXIT_OK if result.is_success() else EXIT_FAILED


def cmd_submit(args: argparse.Namespace) -> int:
    payload = read_payload(args.payload)
    options: dict[str, Any] = {
        "priority": args.priority,
        "routing_key": args.routing_key,
        "description": args.description or "",
        "max_retries": args.max_retries,
        "delay": args.delay,
        "scheduled_for": args.at,
        "job_id": args.job_id,
    }
    with client(args) as c:
        if args.wait is not None:
            result = c.submit_and_wait(
                args.name, payload, timeout=args.wait, job_timeout=args.timeout, **options
            )
            return _print_result(result, args.json)
        job_id = c.submit(args.name, payload, timeout=args.timeout, **options)
    print(render.as_json({"job_id": job_id}) if args.json else job_id)
    due = args.at or (datetime.now(UTC).timestamp() + args.delay if args.delay else None)
    if due is not None and not args.json:
        moment = due if isinstance(due, datetime) else datetime.fromtimestamp(due, UTC)
        print(f"due {render.when(moment)}", file=sys.stderr)
    return EXIT_OK


def _job_and_result(c: Client, job_id: str, routing_key: str | None) -> tuple[Job, Any] | None:
    job = c.get_job(job_id, routing_key)
    if job is None:
        return None
    return job, c.get_result(job_id, job.routing_key)


def cmd_job(args: argparse.Namespace) -> int:
    with client(args) as c:
        found = _job_and_result(c, args.job_id, args.routing_key)
    if found is None:
        print(f"bananas: no job {args.job_id} (or its result has expired)", file=sys.stderr)
        return EXIT_FAILED
    job, result = found
    if args.json:
        data = job.model_dump(mode="json")
        if result is not None:
            data["result"] = result.model_dump(mode="json")
        print(render.as_json(data))
    else:
        print(render.job_view(job, result))
    return EXIT_OK


def cmd_result(args: argparse.Namespace) -> int:
    with client(args) as c:
        if args.wait is not None:
            try:
                result = c.wait_for_result(args.job_id, args.wait, args.routing_key)
            except JobNotFoundError:
                print(f"bananas: no job {args.job_id}", file=sys.stderr)
                return EXIT_FAILED
        else:
            found = c.get_result(args.job_id, args.routing_key)
            if found is None:
                print(f"bananas: no result for {args.job_id} yet", file=sys.stderr)
                return EXIT_FAILED
            result = found
    return _print_result(result, args.json)


def cmd_workflow(args: argparse.Namespace) -> int:
    from bananas.workflow_view import render as render_workflow

    with client(args) as c:
        info = c.get_workflow(args.workflow_id)
    if info is None:
        print(f"bananas: no workflow {args.workflow_id}", file=sys.stderr)
        return EXIT_FAILED
    print(render.as_json(info.model_dump(mode="json")) if args.json else render_workflow(info))
    return EXIT_OK if info.status is not WorkflowStatus.FAILED else EXIT_FAILED


def cmd_cancel(args: argparse.Namespace) -> int:
    return _act_on_job(
        args,
        lambda c: c.cancel(args.job_id, args.routing_key),
        done=f"cancelled {args.job_id}",
        refused="only a job that has not started can be cancelled",
        sep=":",
    )


def cmd_run_now(args: argparse.Namespace) -> int:
    return _act_on_job(
        args,
        lambda c: c.run_now(args.job_id, args.routing_key),
        done=f"{args.job_id} is queued to run now",
        refused="not scheduled (delayed or waiting to retry)",
        sep=",",
    )


def _act_on_job(
    args: argparse.Namespace, act: Callable[[Client], bool], *, done: str, refused: str, sep: str
) -> int:
    """Run one action on a job; when it is refused, say which state the job is in."""
    with client(args) as c:
        try:
            acted = act(c)
        except JobNotFoundError:
            print(f"bananas: no job {args.job_id}", file=sys.stderr)
            return EXIT_FAILED
        if acted:
            print(done)
            return EXIT_OK
        job = c.get_job(args.job_id, args.routing_key)
    state = job.status.value if job else "gone"
    print(f"bananas: {args.job_id} is {state}{sep} {refused}", file=sys.stderr)
    return EXIT_FAILED


_ORDER: dict[str, Callable[[Job], Any]] = {
    "ready": lambda j: 0,  # stable: routing keys in order, queue order inside each
    "scheduled": lambda j: j.scheduled_for or j.created_at,
    "in-flight": lambda j: j.created_at,
    "dead": lambda j: -j.updated_at.timestamp(),
}


def jobs_page(
    c: Client, state: str, routing_key: str | None, offset: int, count: int
) -> tuple[list[Job], int]:
    """One page of ``state``'s jobs over one routing key, or over all of them merged."""
    if routing_key is not None:
        return c.list_jobs(state, routing_key, offset, count)
    merged: list[Job] = []
    total = 0
    for stats in c.all_queue_stats():
        jobs, n = c.list_jobs(state, stats.routing_key, 0, offset + count)
        merged += jobs
        total += n
    merged.sort(key=_ORDER[state])
    return merged[offset : offset + count], total


def cmd_jobs(args: argparse.Namespace) -> int:
    with client(args) as c:
        jobs, total = jobs_page(c, args.state, args.routing_key, args.offset, args.count)
    if args.json:
        print(render.as_json({"total": total, "jobs": [j.model_dump(mode="json") for j in jobs]}))
        return EXIT_OK
    when_label = {
        "ready": "CREATED",
        "scheduled": "DUE",
        "in-flight": "CREATED",
        "dead": "DEAD SINCE",
    }
    rows = []
    for j in jobs:
        moment = {"scheduled": j.scheduled_for, "dead": j.updated_at}.get(args.state, j.created_at)
        rows.append(
            [
                j.id,
                j.routing_key,
                j.priority.value,
                j.name,
                f"{j.attempts}/{j.max_retries + 1}",
                render.when(moment),
                render.first_line(j.error),
            ]
        )
    header = [
        "ID",
        "ROUTING KEY",
        "PRIORITY",
        "NAME",
        "TRIES",
        when_label[args.state],
        "LAST ERROR",
    ]
    print(render.table(header, rows))
    print(render.showing(len(jobs), total, args.offset))
    return EXIT_OK


def register(add: Register) -> None:
    """Add this module's subcommands with ``add(name, function, help)``."""
    p = add("submit", cmd_submit, "Submit a job and print its id (or wait for its result).")
    p.add_argument("name", help="the handler name the job runs")
    p.add_argument(
        "--payload",
        metavar="JSON",
        help="the payload: JSON text, @FILE to read a file, or - to read stdin",
    )
    p.add_argument(
        "--priority",
        default="normal",
        choices=[x.value for x in PRIORITY_ORDER],
        help="served high before normal before low",
    )
    p.add_argument(
        "--routing-key", default="default", metavar="KEY", help="the worker pool that runs it"
    )
    p.add_argument("--description", metavar="TEXT", help="free text kept with the job")
    when = p.add_mutually_exclusive_group()
    when.add_argument(
        "--delay",
        type=duration_arg,
        metavar="DURATION",
        help="run after this long, e.g. 90s, 10m, 1h30m",
    )
    when.add_argument(
        "--at",
        type=time_arg,
        metavar="TIME",
        help="run at this ISO-8601 time, e.g. 2026-12-24T09:00:00+01:00 (no zone: this machine's)",
    )
    p.add_argument(
        "--max-retries",
        type=non_negative_int,
        metavar="N",
        help="retries after the first failure (default: the client's 3)",
    )
    p.add_argument(
        "--timeout",
        type=positive_duration_arg,
        metavar="DURATION",
        help="the job's own time limit (default: the worker's JOB_TIMEOUT)",
    )
    p.add_argument(
        "--job-id",
        metavar="ID",
        help="idempotency key: a second submit with the same id is ignored (default: a new UUID)",
    )
    p.add_argument(
        "--wait",
        type=duration_arg,
        metavar="TIMEOUT",
        help="wait this long for the result and print it; exit 0 only if the job completed",
    )
    add_json(p)

    p = add("job", cmd_job, "Show one job: status, attempts, times, error and traceback.")
    p.add_argument("job_id", metavar="ID")
    p.add_argument("--routing-key", metavar="KEY", help="where to look (default: every key)")
    add_json(p)

    p = add("result", cmd_result, "Show a job's result; exit 0 only if it completed.")
    p.add_argument("job_id", metavar="ID")
    p.add_argument("--routing-key", metavar="KEY", help="where to look (default: every key)")
    p.add_argument(
        "--wait", type=duration_arg, metavar="TIMEOUT", help="wait this long for the job to finish"
    )
    add_json(p)

    p = add("workflow", cmd_workflow, "Show a workflow as a tree: every step's state and result.")
    p.add_argument("workflow_id", metavar="ID")
    add_json(p)

    p = add("cancel", cmd_cancel, "Cancel a job that has not started yet.")
    p.add_argument("job_id", metavar="ID")
    p.add_argument("--routing-key", metavar="KEY", help="where to look (default: every key)")

    p = add(
        "run-now",
        cmd_run_now,
        "Run a delayed job, or a job waiting to retry, now instead of at its due time.",
    )
    p.add_argument("job_id", metavar="ID")
    p.add_argument("--routing-key", metavar="KEY", help="where to look (default: every key)")

    p = add("jobs", cmd_jobs, "List the jobs in one state.")
    p.add_argument(
        "--state",
        choices=JOB_STATES,
        default="ready",
        help="ready: queued; scheduled: delayed or waiting to retry; in-flight: "
        "running on a worker; dead: in the dead-letter queue",
    )
    p.add_argument("--routing-key", metavar="KEY", help="only this routing key (default: all)")
    p.add_argument("--offset", type=non_negative_int, default=0, metavar="N", help="skip this many")
    p.add_argument(
        "--count", type=positive_int, default=50, metavar="N", help="show at most this many"
    )
    add_json(p)

"""What each page shows, read from Redis on every request.

Each ``*_view`` coroutine returns a plain dict that the page's template renders and
the JSON API returns as it is, so the pages and the API can never disagree. The
reads go through the public client (``AsyncClient``: stats, workers, schedules,
jobs, results) and the browsing operations of ``bananas.admin``. The only thing kept
in memory is the chart series (throughput, timing histograms), for a few seconds (a
cache; a restart loses nothing).

Round trips per view (R routing keys, W live workers, S schedules): queues 1 + 2R
(one ``stats`` script and one ``HGETALL`` per key, 8 keys at a time); overview the
same + 1 + W, and 2R ``HGETALL`` for the throughput chart and 2R for the percentile
charts at most every 6 s (hour view); workers 2 + W; schedules 1 + S; a job page 2 to
4 (lengths, then one ``browse`` script per priority list it spans; in flight + 1 + W
for the holders and 1 ``MGET`` for the progress); a job 1 + 2R (the route lookup) + 2
(+ 1 + W while it runs); a results page 3 (the route list; the index's size and a page
of it in one pipeline; one ``results`` script call for every row's result).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import orjson

from bananas.admin import Admin, JobPage, JobRow, JobState
from bananas.client import AsyncClient
from bananas.dashboard.charts import (
    KINDS,
    TIMING_WINDOWS,
    WINDOWS,
    PerPoint,
    Series,
    build_series,
    duration_text,
    lines_svg,
    percentile_lines,
    svg,
    window_quantiles,
)
from bananas.models import PRIORITY_ORDER, Job, JobStatus, Priority, QueueStats, Schedule
from bananas.ops import Op

T = TypeVar("T")

#: Characters of a payload shown in a job list (the detail page shows all of it).
PREVIEW_CHARS = 120


def iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat()


def age_text(seconds: float | None) -> str:
    """``3.2s``, ``4m 10s``, ``2h 5m``, ``3d 4h``; ``-`` for None."""
    if seconds is None:
        return "-"
    s = max(seconds, 0.0)
    if s < 60:
        return f"{s:.1f}s"
    m, s = divmod(int(s), 60)
    if m < 60:
        return f"{m}m {s}s"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h}h {m}m"
    d, h = divmod(h, 24)
    return f"{d}d {h}h"


def progress_fields(percent: float | None, info: Any) -> dict[str, Any]:
    """What a page shows of a running job's last ``set_progress``: the percent, its
    text (``42%``) and the info as a message (a string as it is, anything else as
    compact JSON, cut at :data:`PREVIEW_CHARS`); None and ``-`` when none was reported."""
    if percent is None:
        return {"progress": None, "progress_text": "-", "progress_message": ""}
    message = "" if info is None else info if isinstance(info, str) else _preview(info)
    if len(message) > PREVIEW_CHARS:
        message = message[: PREVIEW_CHARS - 1] + "…"
    return {
        "progress": percent,
        "progress_text": f"{percent:.1f}".rstrip("0").rstrip(".") + "%",
        "progress_message": message,
    }


def payload_preview(job: Job | None) -> str:
    if job is None:
        return "<unreadable record>"
    return _preview(job.payload)


def _preview(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


class Reader:
    """Builds the views of one dashboard from one client."""

    def __init__(self, client: AsyncClient, *, clock: Callable[[], float]) -> None:
        self.client = client
        self.admin = Admin(client.broker)
        self.clock = clock
        self._charts: dict[int, tuple[float, Series, dict[str, dict[str, int]]]] = {}
        self._timings: dict[int, tuple[float, list[str], list[PerPoint]]] = {}

    async def run(self, op: Op[T]) -> T:
        """Drive a broker or admin operation on the client's connection."""
        return await self.client.run(op)

    # -- queues ----------------------------------------------------------------------------

    async def _route_row(self, routing_key: str) -> dict[str, Any]:
        stats = await self.client.queue_stats(routing_key)
        counters = await self.run(self.client.broker.counters(routing_key))
        return self._queue_row(stats, counters)

    def _queue_row(self, s: QueueStats, counters: dict[str, int]) -> dict[str, Any]:
        return {
            "routing_key": s.routing_key,
            "depth": {p.value: s.depth[p] for p in PRIORITY_ORDER},
            "queued": s.queued,
            "scheduled": s.scheduled,
            "in_flight": s.in_flight,
            "dead": s.dead,
            "oldest_age": s.oldest_age,
            "oldest_age_text": age_text(s.oldest_age),
            "paused": bool(getattr(s, "paused", False)),
            "counters": counters,
        }

    async def queues_view(self) -> dict[str, Any]:
        routes = await self.run(self.client.broker.routes())
        rows = await _in_parallel([partial(self._route_row, rk) for rk in routes])
        _, last_hour = await self._throughput(routes, 60)
        for row in rows:
            row["last_hour"] = last_hour.get(row["routing_key"]) or dict.fromkeys(KINDS, 0)
        totals = {k: sum(r[k] for r in rows) for k in ("queued", "scheduled", "in_flight", "dead")}
        return {
            "queues": rows,
            "totals": totals,
            "can_pause": callable(getattr(self.client, "pause", None)),
        }

    async def overview_view(self, window: int = 60) -> dict[str, Any]:
        view = await self.queues_view()
        view["timings"] = await self.timings_view(
            [q["routing_key"] for q in view["queues"]], window
        )
        view["throughput"] = await self.throughput_view(
            [q["routing_key"] for q in view["queues"]], window
        )
        workers = await self.client.workers()
        view["workers"] = {
            "count": len(workers),
            "concurrency": sum(w.concurrency for w in workers),
            "busy": sum(w.in_flight for w in workers),
        }
        lifetime: dict[str, int] = {}
        for q in view["queues"]:
            for k, v in q["counters"].items():
                lifetime[k] = lifetime.get(k, 0) + v
        view["lifetime"] = lifetime
        return view

    # -- throughput ------------------------------------------------------------------------

    async def _throughput(
        self, routes: list[str], window: int
    ) -> tuple[Series, dict[str, dict[str, int]]]:
        """The series of ``window`` over ``routes``, and each routing key's totals.

        Reading costs one ``HGETALL`` per routing key and hour of the window, so the
        series is read again only when a tenth of a bucket has passed (6 s for the hour's
        one-minute points, 1 min for the day, 6 min for the week).
        """
        now = self.clock()
        cached = self._charts.get(window)
        if cached is None or now - cached[0] > WINDOWS[window] * 6:
            last = int(now // 60)
            first = last - window + 1
            per_route = await _in_parallel(
                [partial(self.run, self.admin.throughput(rk, first, last)) for rk in routes]
            )
            bucket = WINDOWS[window]
            by_route = {
                rk: build_series([counts], last, window, bucket).totals
                for rk, counts in zip(routes, per_route, strict=True)
            }
            cached = (now, build_series(per_route, last, window, bucket), by_route)
            self._charts[window] = cached
        return cached[1], cached[2]

    async def throughput_view(self, routes: list[str], window: int) -> dict[str, Any]:
        """Completed, failed and retried jobs per bucket over ``window`` minutes, all routes."""
        window = window if window in WINDOWS else 60
        series, _ = await self._throughput(routes, window)
        return {
            "window": window,
            "windows": list(WINDOWS),
            "bucket": series.bucket,
            "totals": series.totals,
            "svg": svg(series),
        }

    # -- queue wait and run time -------------------------------------------------------------

    async def _timing_points(self, routes: list[str], window: int) -> tuple[int, list[PerPoint]]:
        """The last histogram point of ``window`` and each routing key's histograms.

        Reading costs one ``HGETALL`` per routing key and hour (hour view) or day (day,
        week) of the window, again only when a tenth of a chart point has passed, as for
        the throughput chart.
        """
        hourly = TIMING_WINDOWS[window][0]
        now = self.clock()
        last = int(now // 3600) if hourly else int(now // 60)
        cached = self._timings.get(window)
        if cached is None or cached[1] != routes or now - cached[0] > WINDOWS[window] * 6:
            points = window // 60 if hourly else window
            first = last - points + 1
            per_route: list[PerPoint] = await _in_parallel(
                [
                    partial(self.run, self.admin.timings(rk, first, last, hourly=hourly))
                    for rk in routes
                ]
            )
            cached = (now, list(routes), per_route)
            self._timings[window] = cached
        return last, cached[2]

    async def timings_view(self, routes: list[str], window: int) -> dict[str, Any]:
        """Queue wait and run time p50/p95/p99 over ``window`` minutes: a chart each
        (all routing keys) and a row per routing key."""
        window = window if window in TIMING_WINDOWS else 60
        hourly, group = TIMING_WINDOWS[window]
        last, per_route = await self._timing_points(routes, window)
        per_point = 60 if hourly else 1
        points = window // per_point // group
        last_minute = (last + 1) * per_point - 1
        first_minute = last_minute - window + 1
        view: dict[str, Any] = {
            "window": window,
            "point_minutes": per_point * group,
        }
        for kind, label in (("wait", "queue wait"), ("run", "run time")):
            lines = percentile_lines(per_route, kind, last, points, group)
            view[kind] = {
                "lines": lines,
                "svg": lines_svg(
                    lines, first_minute, last_minute, f"{label} p50, p95, p99 (seconds)"
                ),
            }
        rows = []
        for rk, route in zip(routes, per_route, strict=True):
            row: dict[str, Any] = {"routing_key": rk}
            for kind in ("wait", "run"):
                q = window_quantiles(route, kind)
                row[kind] = q
                row[f"{kind}_text"] = {k: duration_text(v) for k, v in q.items() if k != "n"}
            if row["run"]["n"] or row["wait"]["n"]:
                rows.append(row)
        view["routes"] = rows
        return view

    # -- jobs --------------------------------------------------------------------------------

    def job_row(self, row: JobRow, now: float) -> dict[str, Any]:
        job = row.job
        at = row.at.timestamp() if row.at else None
        return {
            "id": row.id,
            "state": row.state.value,
            "name": job.name if job else "",
            "priority": job.priority.value if job else "",
            "routing_key": job.routing_key if job else "",
            "created_at": iso(job.created_at) if job else None,
            "age": age_text(now - job.created_at.timestamp()) if job else "-",
            "at": iso(row.at),
            "at_in": None if at is None else at - now,
            "at_text": "-" if at is None else _relative(at - now),
            "attempts": row.attempts,
            "error": row.error,
            "payload_preview": payload_preview(job),
        }

    async def jobs_view(
        self,
        routing_key: str,
        state: JobState,
        *,
        offset: int,
        count: int,
        priority: Priority | None,
        reverse: bool,
    ) -> dict[str, Any]:
        page: JobPage = await self.run(
            self.admin.page(routing_key, state, offset, count, priority=priority, reverse=reverse)
        )
        now = self.clock()
        pages = max(1, math.ceil(page.total / count))
        rows = [self.job_row(r, now) for r in page.rows]
        if state is JobState.IN_FLIGHT and rows:
            await self._add_holders(rows, now, routing_key)
        return {
            "routing_key": routing_key,
            "state": state.value,
            "priority": priority.value if priority else "",
            "reverse": reverse,
            "offset": offset,
            "count": count,
            "total": page.total,
            "page": offset // count + 1,
            "pages": pages,
            "jobs": rows,
        }

    async def results_view(
        self, routing_key: str, *, offset: int, count: int, oldest_first: bool
    ) -> dict[str, Any]:
        """A page of the newest completed jobs of ``routing_key`` with their results
        (``Admin.completed_page``; a result past its TTL shows as expired)."""
        page = await self.run(
            self.admin.completed_page(routing_key, offset, count, oldest_first=oldest_first)
        )
        now = self.clock()
        rows = []
        for r in page.rows:
            result = r.result
            rows.append(
                {
                    "id": r.id,
                    "name": r.job.name if r.job else "",
                    "completed_at": iso(r.completed_at),
                    "ago": age_text(now - r.completed_at.timestamp()),
                    "duration": None if result is None else result.duration,
                    "duration_text": "-" if result is None else duration_text(result.duration),
                    "expired": result is None,
                    "result": None if result is None else result.result,
                    "result_preview": "" if result is None else _preview(result.result),
                }
            )
        return {
            "routing_key": routing_key,
            "state": "results",
            "reverse": oldest_first,
            "total": page.total,
            "count": count,
            "page": offset // count + 1,
            "pages": max(1, math.ceil(page.total / count)),
            "results": rows,
        }

    async def _add_holders(self, rows: list[dict[str, Any]], now: float, routing_key: str) -> None:
        """Name the worker holding each in-flight job, how long it has held it, and the
        progress it last reported (one ``MGET`` for the page: ``Admin.progress``)."""
        holders: dict[str, tuple[str, datetime | None]] = {}
        for w in await self.client.workers():
            for job_id, leased_at in w.running.items():
                holders[job_id] = (w.id, leased_at)
        reported = await self.run(
            self.admin.progress(routing_key, [(r["id"], r["attempts"]) for r in rows])
        )
        for row, progress in zip(rows, reported, strict=True):
            worker, at = holders.get(row["id"], ("", None))
            row["worker"] = worker or "-"
            row["leased_at"] = iso(at)
            row["lease_age"] = age_text(now - at.timestamp()) if at else "-"
            row.update(progress_fields(*(progress or (None, None))))

    async def _holder(self, job_id: str) -> tuple[str, str]:
        """The worker running ``job_id`` by the heartbeats, and for how long (``-``)."""
        for w in await self.client.workers():
            at = w.running.get(job_id)
            if at is not None:
                return w.id, age_text(self.clock() - at.timestamp())
        return "-", "-"

    async def job_view(self, job_id: str, routing_key: str | None) -> dict[str, Any] | None:
        job = await self.client.get_job(job_id, routing_key)
        if job is None:
            return None
        result = await self.client.get_result(job_id, job.routing_key)
        workflow = None
        actions = _actions_for(job.status.value)
        if job.workflow_id:
            info = await self.client.get_workflow(job.workflow_id)
            workflow = {
                "id": job.workflow_id,
                "node": job.node,
                "name": info.name if info else "",
                "status": info.status.value if info else "gone",
                "nodes": len(info.nodes) if info else 0,
                "error": info.error if info else "",
            }
            # A step belongs to its workflow: only the workflow may drop it.
            actions = [a for a in actions if a not in ("cancel", "delete")]
            if info and info.status.value in ("running", "failed"):
                actions.append("cancel_workflow")
        running = None
        if job.status is JobStatus.PROCESSING:
            running = progress_fields(job.progress, job.progress_info)
            running["worker"], running["lease_age"] = await self._holder(job_id)
        return {
            "workflow": workflow,
            "running": running,
            "job": job.model_dump(mode="json"),
            "payload_json": orjson.dumps(job.payload, option=orjson.OPT_INDENT_2).decode(),
            "result": None if result is None else result.model_dump(mode="json"),
            "result_json": None
            if result is None
            else orjson.dumps(result.result, option=orjson.OPT_INDENT_2).decode(),
            "actions": actions,
        }

    # -- workers and schedules -----------------------------------------------------------------

    async def workers_view(self, leader_name: str) -> dict[str, Any]:
        workers = await self.client.workers()
        leader = await self.run(self.admin.leader(leader_name))
        now = self.clock()
        rows = [
            {
                **w.model_dump(mode="json"),
                "uptime": age_text(now - w.started_at.timestamp()),
                "seen": age_text(now - w.last_seen.timestamp()),
                "leads_cron": leader is not None and leader in (f"{w.host}-{w.pid}", w.host),
            }
            for w in workers
        ]
        return {"workers": rows, "cron_leader": leader, "leader_name": leader_name}

    async def schedules_view(
        self, next_slot: Callable[[Schedule, datetime], datetime]
    ) -> dict[str, Any]:
        schedules = await self.client.schedules()
        now = datetime.fromtimestamp(self.clock(), UTC)
        rows = []
        for s in schedules:
            status = await self.client.schedule_status(s.id)
            upcoming = status.next_schedule_time if status else None
            if upcoming is None and s.enabled:
                try:
                    upcoming = next_slot(s, now)
                except (ValueError, KeyError):
                    upcoming = None
            rows.append(
                {
                    **s.model_dump(mode="json"),
                    "next_fire": iso(upcoming),
                    "next_fire_text": "-"
                    if upcoming is None
                    else _relative(upcoming.timestamp() - now.timestamp()),
                    "last_fire": iso(status.last_schedule_time) if status else None,
                    "last_success": iso(status.last_successful_time) if status else None,
                    "last_job_id": status.last_job_id if status else "",
                    "last_error": status.last_error if status else "",
                    "run_count": status.run_count if status else 0,
                    "skipped_count": status.skipped_count if status else 0,
                }
            )
        return {"schedules": rows}

    async def audit_view(self, offset: int, count: int) -> dict[str, Any]:
        entries, total = await self.run(self.admin.audit(offset, count))
        return {
            "entries": [orjson.loads(e) for e in entries],
            "total": total,
            "offset": offset,
            "count": count,
        }


#: Routing keys read at once by one view (each on its own pooled connection).
PARALLEL_READS = 8


async def _in_parallel(calls: list[Callable[[], Awaitable[T]]]) -> list[T]:
    """Await ``calls`` at most :data:`PARALLEL_READS` at a time; results in call order.

    A view of many routing keys is as many round trips whatever the order; running a
    few at once divides its wall time without opening a connection per key.
    """
    results: list[T] = []
    for start in range(0, len(calls), PARALLEL_READS):
        chunk = calls[start : start + PARALLEL_READS]
        results += await asyncio.gather(*(c() for c in chunk))
    return results


def _relative(seconds: float) -> str:
    return f"in {age_text(seconds)}" if seconds >= 0 else f"{age_text(-seconds)} ago"


def _actions_for(status: str) -> list[str]:
    """The actions that apply to a job in ``status`` (what the SDK can do to it)."""
    return {
        "pending": ["cancel", "delete"],
        "scheduled": ["run_now", "cancel", "delete"],
        "failed": ["requeue", "delete"],
        "completed": ["delete"],
        "cancelled": ["delete"],
    }.get(status, [])

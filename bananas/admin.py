"""Browsing and managing queues: the operations behind the dashboard (and any admin tool).

The broker (``bananas.broker``) holds the hot path: submit, fetch, ack, fail, reap.
This module holds the other half, which reads and rearranges jobs on request of a
person: a page of one state's jobs with their records, "run now" for scheduled jobs,
delete, and the audit log. Like the broker's, every method returns an operation
(``Op``) that a client drives with ``client.run(op)``; nothing here does I/O.

States and where they live (all keys of one routing key, see ``bananas.keys``):

- ``ready``: the three priority lists, head first;
- ``scheduled``: the ``scheduled`` ZSET, scored by due time;
- ``in_flight``: the ``leases`` ZSET, scored by lease deadline;
- ``dead``: the ``dead`` ZSET, scored by the time the job was dead-lettered.

Every read is bounded by the page asked for: a page costs one script call that
touches ``count`` ids, whatever the size of the queue.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from bananas.broker import Broker
from bananas.models import PRIORITY_ORDER, Job, JobResult, JobStatus, Priority
from bananas.ops import Batch, Op, Script, command, script_call
from bananas.records import decode_job
from bananas.timings import Histogram, merge, parse_fields

_BROWSE = Script("browse")
_RUN_NOW = Script("run_now")
_DELETE = Script("delete")
_RESULTS = Script("results")

#: Audit entries kept (the oldest go first).
AUDIT_CAP = 10_000
#: The outcomes counted per minute by ack and fail, as the field suffixes of a throughput key.
THROUGHPUT_KINDS = {"c": "completed", "f": "failed", "r": "retried"}


class JobState(enum.StrEnum):
    """A state a waiting or running job can be listed in."""

    READY = "ready"
    SCHEDULED = "scheduled"
    IN_FLIGHT = "in_flight"
    DEAD = "dead"


_STATUS = {
    JobState.READY: JobStatus.PENDING,
    JobState.SCHEDULED: JobStatus.SCHEDULED,
    JobState.IN_FLIGHT: JobStatus.PROCESSING,
    JobState.DEAD: JobStatus.FAILED,
}


@dataclass(slots=True)
class JobRow:
    """One listed job. ``at`` is the state's time: due (scheduled), lease deadline
    (in flight) or dead-lettered at (dead); None for ready jobs.

    The record is decoded on first use of :attr:`job`, so a scan that filters on the
    raw text first decodes only the rows it keeps.
    """

    id: str
    state: JobState
    at: datetime | None
    attempts: int
    error: str
    raw: str
    _job: Job | None = field(default=None, repr=False)
    _decoded: bool = field(default=False, repr=False)

    @property
    def job(self) -> Job | None:
        """The job with its live state, or None when the record is gone or unreadable."""
        if not self._decoded:
            self._decoded = True
            if self.raw:
                try:
                    self._job = decode_job(
                        self.raw,
                        attempts=self.attempts,
                        error=self.error,
                        status=_STATUS[self.state],
                    )
                except ValueError:
                    self._job = None
        return self._job


@dataclass(slots=True)
class JobPage:
    """A page of one state's jobs, and how many the state holds in all."""

    rows: list[JobRow]
    total: int


@dataclass(slots=True)
class CompletedRow:
    """One completed job of the results index: when it completed and, while its result
    is kept (its success TTL), the result and the record kept with it (None once
    expired or deleted)."""

    id: str
    completed_at: datetime
    result: JobResult | None
    job: Job | None


@dataclass(slots=True)
class CompletedPage:
    """A page of a routing key's newest completed jobs, and how many the index holds."""

    rows: list[CompletedRow]
    total: int


class Admin:
    """Builds the browsing and managing operations for one broker's key space."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def _rows(self, state: JobState, reply: list[Any], reverse: bool) -> list[JobRow]:
        rows = []
        for i in range(0, len(reply), 5):
            job_id, score, record, attempts, error = reply[i : i + 5]
            at = datetime.fromtimestamp(float(score) / 1000, UTC) if score else None
            rows.append(JobRow(job_id, state, at, int(attempts), error, record))
        return rows[::-1] if reverse else rows

    def _browse(
        self, source: str, routing_key: str, kind: str, start: int, stop: int
    ) -> Op[list[Any]]:
        r = self.broker.route(routing_key)
        reply = yield script_call(
            _BROWSE, (source, r.jobs, r.attempts, r.errors), (kind, start, stop)
        )
        return list(reply)

    def page(
        self,
        routing_key: str,
        state: JobState,
        offset: int = 0,
        count: int = 50,
        *,
        priority: Priority | None = None,
        reverse: bool = False,
    ) -> Op[JobPage]:
        """A page of ``state``'s jobs in its natural order, or the other way with ``reverse``.

        Natural orders: ready head first (oldest first) in priority order, high to low;
        scheduled soonest due first; in flight soonest lease deadline first; dead newest
        first. ``priority`` narrows ready jobs to one priority's list.
        """
        if state is JobState.READY:
            page = yield from self._ready_page(routing_key, offset, count, priority, reverse)
            return page
        r = self.broker.route(routing_key)
        source = {JobState.SCHEDULED: r.scheduled, JobState.IN_FLIGHT: r.leases}.get(state, r.dead)
        natural_desc = state is JobState.DEAD
        kind = "zrev" if natural_desc != reverse else "zset"
        total = yield command("ZCARD", source)
        reply = yield from self._browse(source, routing_key, kind, offset, offset + count - 1)
        return JobPage(self._rows(state, reply, False), int(total))

    def _ready_page(
        self,
        routing_key: str,
        offset: int,
        count: int,
        priority: Priority | None,
        reverse: bool,
    ) -> Op[JobPage]:
        r = self.broker.route(routing_key)
        priorities = [priority] if priority else list(PRIORITY_ORDER)
        if reverse:
            priorities.reverse()
        lengths = yield Batch([command("LLEN", r.queue(p)) for p in priorities])
        total = sum(int(n) for n in lengths)
        rows: list[JobRow] = []
        before = 0
        for p, length in zip(priorities, lengths, strict=True):
            n = int(length)
            lo, hi = max(offset - before, 0), min(offset + count - before, n) - 1
            before += n
            if lo > hi:
                continue
            if reverse:  # from the tail: list indexes -1, -2, ...
                reply = yield from self._browse(r.queue(p), routing_key, "list", -hi - 1, -lo - 1)
            else:
                reply = yield from self._browse(r.queue(p), routing_key, "list", lo, hi)
            rows += self._rows(JobState.READY, reply, reverse)
        return JobPage(rows, total)

    def state_size(
        self, routing_key: str, state: JobState, priority: Priority | None = None
    ) -> Op[int]:
        """How many jobs ``state`` holds on ``routing_key`` (O(1)); ``priority``: ready only."""
        r = self.broker.route(routing_key)
        if state is JobState.READY:
            queues = [r.queue(priority)] if priority else list(r.queues)
            lengths = yield Batch([command("LLEN", q) for q in queues])
            return sum(int(n) for n in lengths)
        source = {JobState.SCHEDULED: r.scheduled, JobState.IN_FLIGHT: r.leases}.get(state, r.dead)
        return int((yield command("ZCARD", source)))

    def run_now(self, routing_key: str, job_ids: Sequence[str]) -> Op[int]:
        """Move scheduled jobs to their queue now; returns how many moved."""
        if not job_ids:
            return 0
        r = self.broker.route(routing_key)
        keys = (r.scheduled, r.jobs, r.wake, *r.queues, *r.flow)
        reply = yield script_call(_RUN_NOW, keys, job_ids)
        return int(reply)

    def delete(self, routing_key: str, job_ids: Sequence[str]) -> Op[int]:
        """Delete jobs that are not running (ready, scheduled, dead or finished).

        A running job is skipped: its worker holds it. Returns how many were deleted.
        """
        if not job_ids:
            return 0
        r = self.broker.route(routing_key)
        keys = [r.jobs, r.attempts, r.errors, r.leases, r.scheduled, r.dead, *r.queues]
        keys += [r.result(j) for j in job_ids]
        keys += r.flow
        reply = yield script_call(_DELETE, keys, job_ids)
        return int(reply)

    def progress(
        self, routing_key: str, jobs: Sequence[tuple[str, int]]
    ) -> Op[list[tuple[float, Any] | None]]:
        """The last progress each running job reported (``Job.set_progress``), for
        (job id, attempt) pairs of one routing key: (percent, info), or None when that
        attempt reported none (what an earlier attempt reported is not its progress).
        One ``MGET`` whatever the number of jobs (the keys share the routing key's slot).
        """
        if not jobs:
            return []
        r = self.broker.route(routing_key)
        reply = yield command("MGET", *(r.progress(job_id) for job_id, _ in jobs))
        out: list[tuple[float, Any] | None] = []
        for (_, attempt), raw in zip(jobs, reply, strict=True):
            found = None
            with contextlib.suppress(ValueError, KeyError, TypeError):
                data = orjson.loads(raw) if raw else None
                if data is not None and data.get("attempt", attempt) == attempt:
                    found = (float(data["percent"]), data.get("info"))
            out.append(found)
        return out

    def throughput(
        self, routing_key: str, first_minute: int, last_minute: int
    ) -> Op[dict[int, dict[str, int]]]:
        """Outcomes per minute (epoch minutes, both ends included): minute -> kind -> count.

        Kinds are ``completed``, ``failed`` (dead-lettered) and ``retried``; a minute with
        none is absent. One ``HGETALL`` per hour the range touches.
        """
        r = self.broker.route(routing_key)
        hours = range(first_minute // 60, last_minute // 60 + 1)
        replies = yield Batch([command("HGETALL", r.throughput(h)) for h in hours])
        out: dict[int, dict[str, int]] = {}
        for fields in replies:
            for name, value in fields.items():
                minute_text, _, kind = name.partition(":")
                minute = int(minute_text)
                if first_minute <= minute <= last_minute and kind in THROUGHPUT_KINDS:
                    out.setdefault(minute, {})[THROUGHPUT_KINDS[kind]] = int(value)
        return out

    def completed_page(
        self, routing_key: str, offset: int = 0, count: int = 50, *, oldest_first: bool = False
    ) -> Op[CompletedPage]:
        """A page of the completed jobs index (newest first; ``oldest_first`` reverses),
        with each job's stored result. Two round trips and three commands whatever the
        page: the index's size and the page in one pipeline, then one ``results`` script
        call reading every row's result hash."""
        r = self.broker.route(routing_key)
        order = "ZRANGE" if oldest_first else "ZREVRANGE"
        total, reply = yield Batch(
            [
                command("ZCARD", r.completed),
                command(order, r.completed, offset, offset + count - 1, "WITHSCORES"),
            ]
        )
        pairs = _score_pairs(reply)
        ids = [job_id for job_id, _ in pairs]
        flat = (yield script_call(_RESULTS, [r.result(i) for i in ids], ())) if ids else []
        stored = [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
        rows = []
        for (job_id, score), (result, record) in zip(pairs, stored, strict=True):
            job = None
            with contextlib.suppress(ValueError):  # an unreadable record: shown without
                job = decode_job(record, status=JobStatus.COMPLETED) if record else None
            rows.append(
                CompletedRow(
                    job_id,
                    datetime.fromtimestamp(score / 1000, UTC),
                    JobResult.model_validate_json(result) if result else None,
                    job,
                )
            )
        return CompletedPage(rows, int(total))

    def timings(
        self, routing_key: str, first: int, last: int, *, hourly: bool = False
    ) -> Op[dict[int, dict[str, Histogram]]]:
        """Queue-wait and run-time histograms per point: point -> ``wait``/``run`` ->
        bucket -> count (``bananas.timings``), points from ``first`` to ``last`` included.

        Points are epoch minutes, or epoch hours with ``hourly`` (the per-minute
        histograms are kept 3 hours, the hourly ones 8 days). One ``HGETALL`` per hour
        (per day with ``hourly``) the range touches.
        """
        r = self.broker.route(routing_key)
        if hourly:
            keys = [r.timing_hours(d) for d in range(first // 24, last // 24 + 1)]
        else:
            keys = [r.timing_minutes(h) for h in range(first // 60, last // 60 + 1)]
        replies = yield Batch([command("HGETALL", k) for k in keys])
        out: dict[int, dict[str, Histogram]] = {}
        for fields in replies:
            for point, kinds in parse_fields(fields, first, last).items():
                into = out.setdefault(point, {})
                for kind, hist in kinds.items():
                    merge(into.setdefault(kind, {}), hist)
        return out

    def leader(self, name: str) -> Op[str | None]:
        """Who holds the leader lock ``name`` right now (None when nobody does)."""
        holder = yield command("GET", self.broker.keys.leader(name))
        return None if holder is None else str(holder)

    def record_audit(self, entry: str, cap: int = AUDIT_CAP) -> Op[None]:
        """Prepend one audit entry (JSON text) and trim the log to ``cap`` entries."""
        key = self.broker.keys.audit
        yield Batch([command("LPUSH", key, entry), command("LTRIM", key, 0, cap - 1)])

    def audit(self, offset: int = 0, count: int = 50) -> Op[tuple[list[str], int]]:
        """A page of audit entries (JSON text), newest first, and how many are kept."""
        key = self.broker.keys.audit
        entries, total = yield Batch(
            [command("LRANGE", key, offset, offset + count - 1), command("LLEN", key)]
        )
        return list(entries), int(total)


def _score_pairs(reply: list[Any]) -> list[tuple[str, float]]:
    """``ZRANGE ... WITHSCORES`` as (member, score) pairs, whether the connection gave
    them flat (RESP2) or paired (RESP3, or a client's own parsing)."""
    if reply and isinstance(reply[0], list | tuple):
        return [(str(m), float(sc)) for m, sc in reply]
    return [(str(reply[i]), float(reply[i + 1])) for i in range(0, len(reply), 2)]

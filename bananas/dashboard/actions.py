"""What an admin can do from the dashboard, and the audit log that records each of it.

Actions on one job (cancel, requeue, delete, run now) and bulk actions on a selection
or on "everything matching this filter", in Oban Web's manner. A filter is a routing
key, a state, optionally a priority and a substring of the name or payload:

- without a substring, "everything matching" is the whole state: its count is exact
  (one ``LLEN``/``ZCARD``) and the action walks the state in batches of 500 until it
  is empty, however large it is;
- with a substring, a bounded scan looks at no more than ``scan_limit`` jobs (the
  pages say so): the count and the action cover the matches among those.

The count the confirmation states comes from :meth:`Actions.preview`; the count the
action reports (and the audit log keeps) is what really moved, which differs only when
jobs changed state in between.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from bananas.admin import JobRow, JobState
from bananas.dashboard.auth import Principal
from bananas.dashboard.data import Reader
from bananas.errors import JobNotFoundError
from bananas.models import Priority

log = logging.getLogger(__name__)

#: Jobs handled per script call by a bulk action.
BULK_BATCH = 500
#: Ids an audit entry lists (the count is always complete).
AUDIT_IDS = 20


class Action(enum.StrEnum):
    """Something an admin can do to jobs."""

    CANCEL = "cancel"
    REQUEUE = "requeue"
    DELETE = "delete"
    RUN_NOW = "run_now"


#: Which bulk actions apply to jobs in each state.
BULK_ACTIONS: dict[JobState, tuple[Action, ...]] = {
    JobState.READY: (Action.DELETE,),
    JobState.SCHEDULED: (Action.RUN_NOW, Action.DELETE),
    JobState.IN_FLIGHT: (),
    JobState.DEAD: (Action.REQUEUE, Action.DELETE),
}


class ActionError(ValueError):
    """An action that does not apply (unknown, or not for this state)."""


@dataclass(frozen=True, slots=True)
class Filter:
    """Which jobs a search or an "everything matching" bulk action covers."""

    routing_key: str
    state: JobState
    query: str = ""
    priority: Priority | None = None

    def matches(self, row: JobRow) -> bool:
        """True when the name or the JSON payload contains the query (case-insensitive)."""
        if not self.query:
            return True
        needle = self.query.lower()
        if needle not in row.raw.lower() and needle != row.id:
            return False  # the record holds the name and the payload: no match, no decode
        if row.job is None:
            return False
        if needle in row.job.name.lower() or needle == row.id:
            return True
        return needle in orjson.dumps(row.job.payload).decode().lower()

    def as_dict(self) -> dict[str, Any]:
        return {
            "routing_key": self.routing_key,
            "state": self.state.value,
            "query": self.query,
            "priority": self.priority.value if self.priority else "",
        }


@dataclass(slots=True)
class ScanResult:
    """Matches of a filter: the rows found, how many were looked at, the state's size."""

    rows: list[JobRow]
    scanned: int
    total: int
    limit: int

    @property
    def complete(self) -> bool:
        """True when every job of the state was looked at."""
        return self.scanned >= self.total


class Actions:
    """Runs actions through a :class:`Reader`'s client and writes the audit log."""

    def __init__(self, reader: Reader, *, scan_limit: int, clock: Callable[[], float]) -> None:
        self.reader = reader
        self.scan_limit = scan_limit
        self.clock = clock

    # -- finding jobs ---------------------------------------------------------------------------

    async def scan(self, f: Filter, limit: int | None = None) -> ScanResult:
        """Look at up to ``limit`` (default ``scan_limit``) jobs of the state, keep the matches."""
        limit = min(limit or self.scan_limit, self.scan_limit)
        admin = self.reader.admin
        rows: list[JobRow] = []
        scanned, total = 0, 0
        while scanned < limit:
            want = min(BULK_BATCH, limit - scanned)
            page = await self.reader.run(
                admin.page(f.routing_key, f.state, scanned, want, priority=f.priority)
            )
            total = page.total
            rows += [r for r in page.rows if f.matches(r)]
            scanned += len(page.rows)
            if len(page.rows) < want:
                break
        return ScanResult(rows, scanned, max(total, scanned), limit)

    async def preview(self, f: Filter) -> dict[str, Any]:
        """How many jobs "everything matching ``f``" covers, for the confirmation."""
        if not f.query:
            total = await self.reader.run(
                self.reader.admin.state_size(f.routing_key, f.state, f.priority)
            )
            return {"count": total, "scanned": total, "total": total, "limited": False}
        found = await self.scan(f)
        return {
            "count": len(found.rows),
            "scanned": found.scanned,
            "total": found.total,
            "limited": not found.complete,
            "limit": found.limit,
        }

    # -- acting ---------------------------------------------------------------------------------

    async def on_ids(self, action: Action, routing_key: str, ids: Sequence[str]) -> int:
        """Apply ``action`` to ``ids`` of ``routing_key``; returns how many it applied to."""
        done = 0
        for start in range(0, len(ids), BULK_BATCH):
            chunk = list(ids[start : start + BULK_BATCH])
            done += await self._apply(action, routing_key, chunk)
        return done

    async def _apply(self, action: Action, routing_key: str, ids: list[str]) -> int:
        admin, client = self.reader.admin, self.reader.client
        if action is Action.REQUEUE:
            # One by one through the client: a workflow's step resumes its workflow too.
            moved = 0
            for job_id in ids:
                moved += await client.requeue_dead(job_id, routing_key)
            return moved
        if action is Action.DELETE:
            return await self.reader.run(admin.delete(routing_key, ids))
        if action is Action.RUN_NOW:
            return await self.reader.run(admin.run_now(routing_key, ids))
        cancelled = 0
        for job_id in ids:
            try:
                cancelled += bool(await client.cancel(job_id, routing_key))
            except JobNotFoundError:
                continue
        return cancelled

    async def on_filter(self, action: Action, f: Filter) -> int:
        """Apply ``action`` to everything matching ``f`` (see the module docstring)."""
        if action not in BULK_ACTIONS[f.state]:
            raise ActionError(f"{action.value} does not apply to {f.state.value} jobs")
        if f.query:
            found = await self.scan(f)
            return await self.on_ids(action, f.routing_key, [r.id for r in found.rows])
        client = self.reader.client
        if action is Action.REQUEUE:
            return await client.requeue_all_dead(f.routing_key)
        if action is Action.DELETE and f.state is JobState.DEAD:
            return await client.purge_dead(f.routing_key)
        return await self._drain(action, f)

    async def _drain(self, action: Action, f: Filter) -> int:
        """Act on the head of the state batch by batch until it is empty (or stops moving)."""
        done = 0
        while True:
            page = await self.reader.run(
                self.reader.admin.page(f.routing_key, f.state, 0, BULK_BATCH, priority=f.priority)
            )
            if not page.rows:
                return done
            moved = await self._apply(action, f.routing_key, [r.id for r in page.rows])
            done += moved
            if moved == 0:  # what is left is not ours to move (e.g. became running)
                return done

    # -- the audit log --------------------------------------------------------------------------

    async def audit(
        self,
        who: Principal,
        action: str,
        count: int,
        *,
        routing_key: str = "",
        ids: Sequence[str] = (),
        filter_: Filter | None = None,
        expected: int | None = None,
    ) -> None:
        """Record who did what to how many jobs."""
        entry = {
            "at": datetime.fromtimestamp(self.clock(), UTC).isoformat(),
            "who": who.name,
            "role": who.role.value,
            "action": action,
            "count": count,
            "routing_key": routing_key,
            "ids": list(ids[:AUDIT_IDS]),
            "selected": len(ids),
            "filter": filter_.as_dict() if filter_ else None,
            "expected": expected,
        }
        await self.reader.run(self.reader.admin.record_audit(orjson.dumps(entry).decode()))
        log.info("dashboard: %s %s %d job(s) on %s", who.name, action, count, routing_key or "-")

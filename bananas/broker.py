"""The queue engine: one typed wrapper per Lua script, and the only code that touches queue keys.

Every method returns an *operation* (see ``bananas.ops``): a generator of Redis
round trips that the sync client, the async client and the worker all drive with
their own connection. Nothing here does I/O. **One clock**: every deadline and due
time that goes into Redis (lease deadlines, due times of delays and retries, the
expiry a reaper compares with, heartbeats) is Redis' own ``TIME``, read by the
scripts or sent for by the operation; the host sends durations, never instants. The
injectable ``clock`` only dates what people read (queue ages in ``stats``), and
:meth:`Broker.wait_result` measures its own timeout on ``time.monotonic()``.

Return codes and mode flags of the scripts are enums here (:class:`FailCode`,
:class:`FairTurn`, :class:`CancelCode`); the stored records and their codec live in
``bananas.records``.

Delivery, in short (DESIGN.md has the guarantees):

- ``enqueue`` stores the record and pushes the id, atomically and once per id.
- ``fetch`` pops ids and leases them (deadline in ``leases``); the per-job delivery
  count in ``attempts`` is the lease token; a fetch id makes a re-sent fetch return
  what the first one leased.
- ``ack`` / ``fail`` / ``renew`` / ``release`` check the token, so a worker whose
  lease was reaped cannot complete, fail or renew a job that was delivered again.
- ``reap`` returns expired leases to their queue, or dead-letters a job delivered
  ``max_retries + 1`` times without an ack (poison).
- ``promote`` moves due delayed jobs and retries from ``scheduled`` to their queue.
"""

from __future__ import annotations

import enum
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

import orjson

from bananas import timings as timings_mod
from bananas.keys import KeySpace, RouteKeys
from bananas.models import (
    DEFAULT_FAILURE_TTL,
    MAX_DURATION_SECONDS,
    PRIORITY_ORDER,
    Job,
    JobResult,
    JobStatus,
    Priority,
    QueueStats,
    Schedule,
    ScheduleStatus,
    WorkerInfo,
)
from bananas.ops import Batch, Call, Op, Script, command, script_call
from bananas.records import decode_job, iso, split_error

Clock = Callable[[], float]
#: A leased job handed back: id, lease token, priority and, for a job of a group, its group.
Held = tuple[str, int, Priority] | tuple[str, int, Priority, str | None]

#: Priority -> 1-based index used by the scripts.
PRIORITY_INDEX = {p: i + 1 for i, p in enumerate(PRIORITY_ORDER)}

#: How long a result notification waits for a waiter that has not arrived yet.
NOTIFY_TTL_MS = 60_000
#: Dead-letter queue bounds per routing key (oldest go first), unless its retention says
#: otherwise (``Broker.set_retention``): Sidekiq's defaults.
DEAD_LETTER_CAP = 10_000
DEAD_LETTER_MAX_AGE_MS = 180 * 24 * 3600 * 1000
#: Longest single blocking command; longer waits are issued in chunks (a liveness check).
MAX_BLOCK_SECONDS = 2.0
#: Expired leases handled per reap call.
REAP_BATCH = 200
#: Most dead-lettered jobs aged out of the dead-letter queue by one fail call.
DEAD_LETTER_TRIM_BATCH = 1000
#: How long a routing key's per-minute outcome counters are kept (a week, and a day more).
THROUGHPUT_TTL_MS = 8 * 24 * 3600 * 1000
#: Completed jobs a routing key's results index keeps (the newest; the dashboard's page).
COMPLETED_INDEX_CAP = 10_000
#: Routes settled per due_settle call (the reaper's and the promoter's visits).
SETTLE_BATCH = 500
#: Due scheduled jobs moved per promote call.
PROMOTE_BATCH = 1000
#: The longest result TTL a record may name (a longer one is ignored by the reaper).
MAX_TTL_MS = MAX_DURATION_SECONDS * 1000
#: How long a job's last progress (and its watchers' registration) is kept.
PROGRESS_TTL_MS = 3600 * 1000
#: How long a job id's index entry outlives the job's due time and its kept result: the
#: job's wait in its queue, its runs and its stay in the dead-letter queue.
ID_INDEX_SLACK_MS = 8 * 24 * 3600 * 1000
#: A claim of a job id younger than this is never taken over (its enqueue may be on its way).
ID_CLAIM_GRACE_MS = 60_000


class FailCode(enum.IntEnum):
    """What fail.lua did with one failed attempt."""

    #: The lease token was stale (the job was reaped or delivered again): nothing changed.
    REFUSED = 0
    #: A retry was scheduled.
    RETRIED = 1
    #: The job went to the dead-letter queue.
    DEAD = 2


class FairTurn(enum.IntEnum):
    """fetch.lua's anti-starvation turn: which lower priority goes first, one job each."""

    #: No fair turn: strictly high, then normal, then low.
    NONE = 0
    #: One normal job, then one low job, then the usual order.
    NORMAL_FIRST = 1
    #: One low job, then one normal job, then the usual order.
    LOW_FIRST = 2


class UniqueCode(enum.IntEnum):
    """What enqueue_unique.lua did with a job under a unique key."""

    #: A live job holds the key: nothing was stored; its id is returned.
    EXISTING = 0
    #: The new job was stored and holds the key.
    STORED = 1
    #: Debounce: the pending holder took the new record and due time.
    DEBOUNCED = 2


class CancelCode(enum.StrEnum):
    """What cancel.lua answered: cancelled, or the state that prevented it."""

    CANCELLED = "cancelled"
    PROCESSING = "processing"
    FAILED = "failed"
    FINISHED = "finished"
    MISSING = "missing"


def serve_mask(priorities: Iterable[Priority]) -> str:
    """fetch.lua's ARGV of priorities to serve: "1" serve / "0" skip, high, normal, low."""
    served = set(priorities)
    return "".join("1" if p in served else "0" for p in PRIORITY_ORDER)


_SCRIPTS = {
    name: Script(name)
    for name in (
        "enqueue",
        "fetch",
        "ack",
        "fail",
        "renew",
        "release",
        "reap",
        "promote",
        "cancel",
        "inspect",
        "requeue_dead",
        "purge_dead",
        "dead_letters",
        "delete_dead",
        "stats",
        "lead",
        "claim_id",
        "enqueue_unique",
        "enqueue_grouped",
        "set_limit",
        "set_progress",
        "pause",
        "due_settle",
        "due_routes",
    )
}


@dataclass(frozen=True, slots=True)
class Unique:
    """A job's unique key: the lock's name, how long it lasts and the mode."""

    key: str
    ttl_ms: int
    #: Debounce: a pending holder takes the new record and due time instead.
    debounce: bool = False


@dataclass(slots=True)
class NewJob:
    """A job ready to be stored: its id, where it goes and its encoded record."""

    id: str
    routing_key: str
    priority: Priority
    #: Epoch ms the job is due at (``scheduled_for``, the caller's clock on purpose), or 0.
    due_ms: int
    record: str
    #: Ms after Redis' own clock the job is due (``delay``), or 0; wins over ``due_ms``.
    delay_ms: int = 0
    #: The caller chose the id (``job_id=``): it is claimed in the prefix-wide id index.
    #: A generated id is random (122 bits) and needs no claim.
    explicit_id: bool = False
    #: Stored under a unique key (``unique_for`` / ``debounce``), by enqueue_unique.lua.
    unique: Unique | None = None
    #: Its group (``group=``): served round robin with the other groups, under their limits.
    group: str | None = None
    #: The longer of its result TTLs, ms (how long its id stays claimed after it is due).
    kept_ms: int = 0

    @property
    def due(self) -> str:
        """The due field of ``enqueue.lua``: "0" now, "+N" N ms after Redis' TIME, "N" at N."""
        if self.delay_ms > 0:
            return f"+{self.delay_ms}"
        return str(self.due_ms) if self.due_ms > 0 else "0"


@dataclass(slots=True)
class Leased:
    """A job leased to a worker: id, raw record and the lease token (delivery number)."""

    id: str
    record: str
    attempt: int


@dataclass(slots=True)
class Fetched:
    """What one fetch did: the jobs leased, the queue entries dropped for having no
    record (``orphans``), and the jobs dead-lettered for a bad field (id, reason)."""

    leased: list[Leased]
    orphans: list[str]
    dead: list[tuple[str, str]]
    #: The fetch id registered as idle now, or "" (single hop: ``fetch_batch(idle_ms=)``).
    idle: str = ""


@dataclass(slots=True)
class Woken:
    """What woke an idle worker (:meth:`Broker.wait_for_handoff`): a wake token of
    ``route``, or, with ``handed`` set, a job a submit leased to it there (single hop)."""

    route: str
    handed: Leased | None = None


def parse_handoff(entry: str) -> Leased:
    """A hand-off list entry (``enqueue.lua``: "<token> <id characters> <id><record>")."""
    token, chars, rest = entry.split(" ", 2)
    n = int(chars)
    return Leased(rest[:n], rest[n:], int(token))


def new_fetch_id() -> str:
    """A fresh fetch id (``Broker.fetch``): unique, short."""
    return uuid.uuid4().hex[:16]


@dataclass(slots=True)
class Outcome:
    """How a leased job ended, handed to :meth:`Broker.ack` or :meth:`Broker.fail`.

    For a failure, ``retry_in_ms`` >= 0 schedules a retry that many ms after Redis' own
    clock; -1 dead-letters the job. ``kept_record`` is the record kept with the result
    ('' keeps the stored record; the executor sends a stand-in without the payload for
    a record above ``records.MAX_KEPT_RECORD_BYTES``).
    """

    id: str
    attempt: int
    result: str
    ttl_ms: int
    error: str = ""
    retry_in_ms: int = -1
    kept_record: str = ""
    #: The job's group ("" for none): its concurrency slot, if it holds one, goes back.
    group: str = ""


@dataclass(slots=True)
class FailReply:
    """What one fail call did: a code per job, and the dead-lettered jobs trimmed."""

    codes: list[FailCode]
    trimmed: int


class Reaped(NamedTuple):
    """What one ``reap`` call did."""

    requeued: int
    dead: int
    #: Dead-lettered jobs that are workflow steps: (job id, reason), to record on their
    #: workflows (``bananas.workflow_store``).
    steps: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class DeadJob:
    """One row of the dead-letter queue."""

    job: Job | None
    job_id: str
    failed_at: datetime
    attempts: int
    error: str
    raw: str


#: The states ``list_jobs`` can list (``bananas jobs --state``).
JobState = Literal["ready", "scheduled", "in-flight", "dead"]
JOB_STATES: tuple[JobState, ...] = ("ready", "scheduled", "in-flight", "dead")
_LISTED_STATUS = {
    "ready": JobStatus.PENDING,
    "scheduled": JobStatus.SCHEDULED,
    "in-flight": JobStatus.PROCESSING,
    "dead": JobStatus.FAILED,
}


def _pairs(flat: Any) -> list[tuple[str, float]]:
    """ZRANGE ... WITHSCORES as (member, score) pairs, whatever shape the client returns."""
    if flat and isinstance(flat[0], list | tuple):
        return [(str(m), float(s)) for m, s in flat]
    return [(str(flat[i]), float(flat[i + 1])) for i in range(0, len(flat), 2)]


_STATES = {
    "processing": JobStatus.PROCESSING,
    "scheduled": JobStatus.SCHEDULED,
    "failed": JobStatus.FAILED,
    "pending": JobStatus.PENDING,
}


class Broker:
    """Builds every queue operation for one key space."""

    def __init__(
        self, keys: KeySpace | None = None, *, clock: Clock = time.time, due_index: bool = True
    ) -> None:
        self.keys = keys or KeySpace()
        self.clock = clock
        #: Whether the scripts keep the due indexes (``KeySpace.due_leases`` and
        #: ``due_scheduled``) and the reaper and promoter read them. False on Redis
        #: Cluster, where a prefix-wide key is in another slot than the routes' keys.
        self.due_index = due_index
        self._routes: dict[str, RouteKeys] = {}

    def route(self, routing_key: str) -> RouteKeys:
        """The (cached) keys of one routing key."""
        keys = self._routes.get(routing_key)
        if keys is None:
            keys = self._routes[routing_key] = self.keys.route(routing_key)
        return keys

    def _index_at(self, keys: list[str], index: str) -> int:
        """Append the due index ``index`` to a script's ``keys`` and return its position
        there (1-based: what the script's ARGV names), or 0 without appending when the
        due indexes are off (Redis Cluster)."""
        if not self.due_index:
            return 0
        keys.append(index)
        return len(keys)

    def now_ms(self) -> int:
        """The injectable clock in ms: only for what people read (throughput buckets),
        never for a deadline or a due time (those are Redis' TIME)."""
        return int(self.clock() * 1000)

    # -- submitting ----------------------------------------------------------------------

    def enqueue(self, routing_key: str, jobs: Sequence[NewJob]) -> Op[list[bool]]:
        """Store ``jobs`` (all of ``routing_key``); per job, False if it was a duplicate.

        Jobs of a group are stored by enqueue_grouped.lua, the others by enqueue.lua.
        """
        if any(j.group is not None for j in jobs):
            plain = [j for j in jobs if j.group is None]
            grouped = [j for j in jobs if j.group is not None]
            stored = dict(
                zip(
                    (j.id for j in grouped),
                    (yield from self._enqueue_grouped(routing_key, grouped)),
                    strict=True,
                )
            )
            if plain:
                stored.update(
                    zip(
                        (j.id for j in plain),
                        (yield from self.enqueue(routing_key, plain)),
                        strict=True,
                    )
                )
            return [stored[j.id] for j in jobs]
        r = self.route(routing_key)
        keys = [r.jobs, r.scheduled, r.wake, r.schedwake, r.stats, *r.queues]
        keys += (r.idle, r.leases, r.attempts, r.paused)
        keys += [r.result(j.id) for j in jobs]
        # The due index of scheduled jobs, and right after it that of leases (a job handed
        # to an idle worker is leased there): ARGV[1] names the first (0: none, Cluster).
        argv: list[Any] = [self._index_at(keys, self.keys.due_scheduled)]
        self._index_at(keys, self.keys.due_leases)
        for j in jobs:
            argv += (j.id, PRIORITY_INDEX[j.priority], j.due, j.record)
        reply = yield script_call(_SCRIPTS["enqueue"], keys, argv)
        return [bool(x) for x in reply]

    def _enqueue_grouped(self, routing_key: str, jobs: Sequence[NewJob]) -> Op[list[bool]]:
        r = self.route(routing_key)
        keys = [r.jobs, r.scheduled, r.wake, r.schedwake, r.stats, *r.queues]
        keys += [r.result(j.id) for j in jobs]
        argv: list[Any] = [self._index_at(keys, self.keys.due_scheduled)]
        keys += r.flow
        for j in jobs:
            argv += (j.id, PRIORITY_INDEX[j.priority], j.due, j.group, j.record)
        reply = yield script_call(_SCRIPTS["enqueue_grouped"], keys, argv)
        return [bool(x) for x in reply]

    def enqueue_unique(self, job: NewJob) -> Op[tuple[str, UniqueCode]]:
        """Store ``job`` under its unique key (see enqueue_unique.lua).

        Returns the id of the job that holds the key (``job.id`` when stored) and what
        happened. Raises ValueError when ``job.unique`` is None.
        """
        if job.unique is None:
            raise ValueError(f"job {job.id} has no unique key")
        r = self.route(job.routing_key)
        keys = [
            r.jobs,
            r.scheduled,
            r.wake,
            r.schedwake,
            r.stats,
            *r.queues,
            r.leases,
            r.dead,
            r.unique(job.unique.key),
        ]
        argv = (
            self._index_at(keys, self.keys.due_scheduled),
            orjson.dumps(job.id).decode(),
            PRIORITY_INDEX[job.priority],
            job.due,
            job.record,
            job.unique.ttl_ms,
            "debounce" if job.unique.debounce else "unique",
        )
        holder, code = yield script_call(_SCRIPTS["enqueue_unique"], keys, argv)
        return str(orjson.loads(holder)), UniqueCode(int(code))

    def claim_id(
        self, job_id: str, routing_key: str, ttl_ms: int, *, stale_owner: str = ""
    ) -> Op[tuple[str, bool]]:
        """Claim ``job_id`` prefix-wide for ``routing_key`` (see claim_id.lua).

        Returns (owner, ours): the routing key the id belongs to, and whether that is
        ``routing_key`` now. ``stale_owner`` is a routing key found not to hold the job,
        whose old claim may then be taken over.
        """
        owner, ours = yield script_call(
            _SCRIPTS["claim_id"],
            (self.keys.job_id(job_id),),
            (routing_key, ttl_ms, ID_CLAIM_GRACE_MS, stale_owner),
        )
        return owner, bool(ours)

    def holds(self, routing_key: str, job_id: str) -> Op[bool]:
        """True when ``routing_key`` has ``job_id`` live or keeps its result."""
        r = self.route(routing_key)
        live, kept = yield Batch(
            [command("HEXISTS", r.jobs, job_id), command("EXISTS", r.result(job_id))]
        )
        return bool(live or kept)

    def add_routes(self, routing_keys: Iterable[str]) -> Op[None]:
        """Remember routing keys in the set of known routes (read by stats and lookups)."""
        yield command("SADD", self.keys.routes, *routing_keys)

    def routes(self) -> Op[list[str]]:
        """Every routing key that has held a job, sorted."""
        reply = yield command("SMEMBERS", self.keys.routes)
        return sorted(reply)

    # -- the worker's side -----------------------------------------------------------------

    def fetch(
        self,
        routing_key: str,
        count: int,
        lease_ms: int,
        *,
        fair: FairTurn | int = FairTurn.NONE,
        priorities: Iterable[Priority] = PRIORITY_ORDER,
    ) -> Op[list[Leased]]:
        """The jobs :meth:`fetch_batch` leases (for callers that need nothing else)."""
        fetched = yield from self.fetch_batch(
            routing_key, count, lease_ms, fair=fair, priorities=priorities
        )
        return fetched.leased

    def fetch_batch(
        self,
        routing_key: str,
        count: int,
        lease_ms: int,
        *,
        fair: FairTurn | int = FairTurn.NONE,
        priorities: Iterable[Priority] = PRIORITY_ORDER,
        fetch_id: str = "",
        idle_ms: int = 0,
        registered: bool = False,
        next_id: str = "",
    ) -> Op[Fetched]:
        """Lease up to ``count`` ready jobs, high priority first, until Redis' own clock
        says ``lease_ms`` have passed.

        ``fair`` other than :attr:`FairTurn.NONE` makes this an anti-starvation turn:
        one normal and one low job first, in the order it names (see fetch.lua).
        Only the queues of ``priorities`` are served. ``fetch_id`` (unique per fetch, the
        same when a fetch whose reply was lost is sent again) makes the fetch idempotent:
        the second call returns the jobs the first one leased.

        Single hop: ``idle_ms`` > 0 registers an id as idle for that long when the fetch
        leases fewer than ``count`` jobs (``Fetched.idle``: ``fetch_id`` when it leased
        none, else ``next_id``), so that a submit may lease its job to that id straight
        away (:meth:`wait_for_handoff`); ``registered`` says a registration of
        ``fetch_id`` may be live, to be removed unless renewed. A job a submit handed to
        ``fetch_id`` comes back like the jobs of a re-sent fetch.
        """
        r = self.route(routing_key)
        fetch_id = fetch_id or new_fetch_id()
        single_hop = idle_ms > 0 or registered
        keys = [*r.queues, r.jobs, r.leases, r.attempts, r.wake, r.errors, r.dead, r.stats,
                r.fetch(fetch_id), r.paused, r.idle, r.fetch(next_id)]  # fmt: skip
        leases_at = self._index_at(keys, self.keys.due_leases)
        scheduled_at = self._index_at(keys, self.keys.due_scheduled)
        keys += r.flow
        reply = yield script_call(
            _SCRIPTS["fetch"],
            keys,
            (lease_ms, count, str(int(FairTurn(fair))), serve_mask(priorities),
             fetch_id if single_hop else "", idle_ms, "1" if registered else "0", next_id,
             leases_at, scheduled_at),
        )  # fmt: skip
        flat, orphans, bad, idle = reply
        leased = [Leased(flat[i], flat[i + 1], int(flat[i + 2])) for i in range(0, len(flat), 3)]
        dead = [(bad[i], bad[i + 1]) for i in range(0, len(bad), 2)]
        return Fetched(leased, list(orphans), dead, str(idle or ""))

    def ack(self, routing_key: str, done: Sequence[Outcome], timings: str = "") -> Op[list[bool]]:
        """Complete leased jobs and store their results; False where the token was stale.

        ``timings`` (``bananas.timings.tally``) is counted in the same call."""
        r = self.route(routing_key)
        minute = self.now_ms() // 60_000
        keys = [r.leases, r.jobs, r.attempts, r.errors, r.stats]
        argv: list[Any] = [NOTIFY_TTL_MS, minute, THROUGHPUT_TTL_MS]
        for o in done:
            keys += (r.result(o.id), r.notify(o.id))
            argv += (o.id, o.attempt, o.result, _kept(o.ttl_ms), o.kept_record, o.group)
        keys += (*_timing_keys(r, minute), r.completed)
        if any(o.group for o in done):  # flow: slots go back, parked tokens may wake a worker
            keys += (r.wake, *r.queues, *r.flow)
        argv += (COMPLETED_INDEX_CAP, timings_mod.MINUTE_TTL_MS, timings_mod.HOUR_TTL_MS, timings)
        reply = yield script_call(_SCRIPTS["ack"], keys, argv)
        return [bool(x) for x in reply]

    def fail(
        self, routing_key: str, failed: Sequence[Outcome], timings: str = ""
    ) -> Op[list[FailCode]]:
        """Record failed attempts; per job, what happened (a :class:`FailCode`)."""
        reply = yield from self.fail_batch(routing_key, failed, timings)
        return reply.codes

    def fail_batch(
        self, routing_key: str, failed: Sequence[Outcome], timings: str = ""
    ) -> Op[FailReply]:
        """Record failed attempts: per job a :class:`FailCode`, and how many old
        dead-lettered jobs the routing key's retention trimmed (oldest first).

        ``timings`` (``bananas.timings.tally``) is counted in the same call."""
        r = self.route(routing_key)
        keys = [r.leases, r.jobs, r.attempts, r.errors, r.stats, r.scheduled, r.dead, r.schedwake]
        keys.append(r.retention)
        minute = self.now_ms() // 60_000  # throughput buckets: for people, the host's clock
        argv: list[Any] = [
            0,  # the due index's position in KEYS, set below
            NOTIFY_TTL_MS,
            DEAD_LETTER_CAP,
            DEAD_LETTER_MAX_AGE_MS,
            DEAD_LETTER_TRIM_BATCH,
            minute,
            THROUGHPUT_TTL_MS,
        ]
        for o in failed:
            keys += (r.result(o.id), r.notify(o.id))
            argv += (
                o.id,
                o.attempt,
                o.error,
                o.retry_in_ms,
                o.result,
                _kept(o.ttl_ms),
                o.kept_record,
                o.group,
            )
        keys += _timing_keys(r, minute)
        argv[0] = self._index_at(keys, self.keys.due_scheduled)
        if any(o.group for o in failed):  # flow
            keys += (r.wake, *r.queues, *r.flow)
        argv += (timings_mod.MINUTE_TTL_MS, timings_mod.HOUR_TTL_MS, timings)
        reply = yield script_call(_SCRIPTS["fail"], keys, argv)
        n = len(failed)
        return FailReply([FailCode(int(x)) for x in reply[:n]], int(reply[n]))

    def set_retention(
        self, routing_key: str, max_dead: int | None, max_dead_age_ms: int | None
    ) -> Op[None]:
        """Bound a routing key's dead-letter queue; None restores a default."""
        r = self.route(routing_key)
        calls = []
        for field, value in (("max_dead", max_dead), ("max_dead_age_ms", max_dead_age_ms)):
            if value is None:
                calls.append(command("HDEL", r.retention, field))
            else:
                calls.append(command("HSET", r.retention, field, value))
        yield Batch(calls)

    def retention(self, routing_key: str) -> Op[tuple[int, int]]:
        """A routing key's dead-letter bounds: (max count, max age ms)."""
        cap, age = yield command(
            "HMGET", self.route(routing_key).retention, "max_dead", "max_dead_age_ms"
        )
        return int(cap or DEAD_LETTER_CAP), int(age or DEAD_LETTER_MAX_AGE_MS)

    def renew(
        self, routing_key: str, held: Sequence[tuple[str, int]], lease_ms: int
    ) -> Op[list[str]]:
        """Extend the leases in ``held`` (id, token) to ``lease_ms`` after Redis' own clock;
        returns the ids no longer held."""
        r = self.route(routing_key)
        argv: list[Any] = [lease_ms]
        for job_id, attempt in held:
            argv += (job_id, attempt)
        keys = [r.leases, r.attempts]
        self._index_at(keys, self.keys.due_leases)
        reply = yield script_call(_SCRIPTS["renew"], keys, argv)
        return list(reply)

    def release(self, routing_key: str, held: Sequence[Held]) -> Op[int]:
        """Hand leased jobs (id, token, priority[, group]) back to the head of their queue
        (a job of a group: of its group) at once."""
        r = self.route(routing_key)
        argv: list[Any] = []
        keys: list[str] = [r.leases, r.attempts, r.wake, *r.queues]
        for item in held:
            group = item[3] if len(item) > 3 else None
            argv += (item[0], item[1], PRIORITY_INDEX[item[2]], group or "")
        if any(len(item) > 3 and item[3] for item in held):  # flow
            keys += r.flow
        reply = yield script_call(_SCRIPTS["release"], keys, argv)
        return int(reply)

    def reap(self, routing_key: str, limit: int = REAP_BATCH) -> Op[Reaped]:
        """Return expired leases to their queue; returns (requeued, dead-lettered, the
        workflow steps among the dead-lettered as (job id, reason) pairs)."""
        reaped, _ = yield from self.reap_next(routing_key, limit)
        return reaped

    def reap_next(self, routing_key: str, limit: int = REAP_BATCH) -> Op[tuple[Reaped, int | None]]:
        """:meth:`reap`, also returning the ms until the earliest lease left expires (0
        after a reap: look again soon; None when the route holds no lease at all).

        Expired by Redis' clock: one round trip reads the earliest deadline and Redis'
        TIME; only when a lease has expired are the candidates read and the script run
        (which checks each deadline against TIME again).
        """
        r = self.route(routing_key)
        if self.due_index:
            # Settles this route's entry in the due index of leases on the way (and again
            # after a reap, below).
            [until] = yield from self.settle_leases([routing_key])
            if until is None or until > 0:
                return Reaped(0, 0), until
            now = yield from self._redis_now()
        else:
            earliest, (seconds, micros) = yield Batch(
                [command("ZRANGE", r.leases, 0, 0, "WITHSCORES"), command("TIME")]
            )
            now = int(seconds) * 1000 + int(micros) // 1000
            if not earliest:
                return Reaped(0, 0), None
            if _first_score(earliest) > now:
                return Reaped(0, 0), int(_first_score(earliest) - now)
        ids = yield command("ZRANGEBYSCORE", r.leases, "-inf", now, "LIMIT", 0, limit)
        if not ids:
            return Reaped(0, 0), 0
        keys = [r.leases, r.jobs, r.attempts, r.errors, r.stats, r.dead, r.wake, *r.queues]
        for job_id in ids:
            keys += (r.result(job_id), r.notify(job_id))
        keys += r.flow
        reply = yield script_call(
            _SCRIPTS["reap"],
            keys,
            (MAX_TTL_MS, NOTIFY_TTL_MS, iso(now / 1000), int(DEFAULT_FAILURE_TTL * 1000), *ids),
        )
        steps = tuple((reply[i], reply[i + 1]) for i in range(2, len(reply), 2))
        if self.due_index:
            yield from self.settle_leases([routing_key])
        return Reaped(int(reply[0]), int(reply[1]), steps), 0

    def _redis_now(self) -> Op[int]:
        seconds, micros = yield command("TIME")
        return int(seconds) * 1000 + int(micros) // 1000

    def settle_leases(self, routing_keys: Sequence[str]) -> Op[list[int | None]]:
        """Set each route's entry in the due index of leases to its earliest lease deadline
        (or remove it when it holds none), in one call; returns per route the ms until
        that deadline by Redis' clock (0 or less: expired), or None when it holds no
        lease. Only with the due indexes on (not on Redis Cluster)."""
        sets = [self.route(rk).leases for rk in routing_keys]
        return (yield from self._settle(self.keys.due_leases, sets))

    def settle_scheduled(self, routing_keys: Sequence[str]) -> Op[list[int | None]]:
        """:meth:`settle_leases` for the due index of scheduled jobs: per route the ms
        until its next due time (0 or less: due now), or None when none is scheduled."""
        sets = [self.route(rk).scheduled for rk in routing_keys]
        return (yield from self._settle(self.keys.due_scheduled, sets))

    def _settle(self, index: str, sets: Sequence[str]) -> Op[list[int | None]]:
        untils: list[int | None] = []
        for first in range(0, len(sets), SETTLE_BATCH):
            reply = yield script_call(
                _SCRIPTS["due_settle"], (index, *sets[first : first + SETTLE_BATCH]), ()
            )
            untils += [None if u is None else int(u) for u in reply]
        return untils

    def due_leases(self, routing_keys: Sequence[str]) -> Op[tuple[list[str], int | None]]:
        """Which of ``routing_keys`` may hold an expired lease, by the due index of leases
        and Redis' clock, and the ms until the next one may (None: none holds a lease).
        One call, whatever the number of keys. Only with the due indexes on."""
        by_set = [self.route(rk).leases for rk in routing_keys]
        return (yield from self._due(self.keys.due_leases, by_set, routing_keys))

    def due_scheduled(self, routing_keys: Sequence[str]) -> Op[tuple[list[str], int | None]]:
        """Which of ``routing_keys`` may have a due delayed job or retry, by the due index
        of scheduled jobs and Redis' clock, and the ms until the next one may (None: none
        has a scheduled job). One call. Only with the due indexes on."""
        by_set = [self.route(rk).scheduled for rk in routing_keys]
        return (yield from self._due(self.keys.due_scheduled, by_set, routing_keys))

    def _due(
        self, index: str, members: Sequence[str], routing_keys: Sequence[str]
    ) -> Op[tuple[list[str], int | None]]:
        if not members:
            return [], None
        positions, until = yield script_call(_SCRIPTS["due_routes"], (index,), members)
        due = [routing_keys[int(i) - 1] for i in positions]
        return due, None if int(until) < 0 else int(until)

    def earliest_leases(self, routing_keys: Sequence[str]) -> Op[list[int | None]]:
        """For each routing key, the ms until its earliest lease expires by Redis' clock
        (0 or less: one has expired; None: the route holds no lease). One round trip
        of one ``ZRANGE`` per key and a single ``TIME``, for a reaper's look at many
        routes (see :meth:`reap_next` for the reap itself)."""
        if not routing_keys:
            return []
        reply = yield Batch(
            [command("TIME")]
            + [command("ZRANGE", self.route(rk).leases, 0, 0, "WITHSCORES") for rk in routing_keys]
        )
        seconds, micros = reply[0]
        now = int(seconds) * 1000 + int(micros) // 1000
        return [int(_first_score(e) - now) if e else None for e in reply[1:]]

    def promote(self, routing_key: str, limit: int = PROMOTE_BATCH) -> Op[tuple[int, int | None]]:
        """Move due scheduled jobs to their queue (due by Redis' own clock); returns
        (moved, ms until the next scheduled job is due, or None when none is)."""
        r = self.route(routing_key)
        keys = [r.scheduled, r.jobs, r.wake, *r.queues]
        index_at = self._index_at(keys, self.keys.due_scheduled)
        reply = yield script_call(_SCRIPTS["promote"], (*keys, *r.flow), (limit, index_at))
        next_due = int(reply[1])
        return int(reply[0]), (None if next_due < 0 else next_due)

    def wait_for_work(
        self, routing_keys: Iterable[str], timeout: float, *, cluster: bool
    ) -> Op[bool]:
        """Block until a job may be ready on one of ``routing_keys`` (True) or ``timeout`` s pass.

        Waits on the routes' wake lists, which enqueue, release, reap and promote push to.
        """
        woken = yield from self.wait_for_route(routing_keys, timeout, cluster=cluster)
        return woken is not None

    def wait_for_route(
        self, routing_keys: Iterable[str], timeout: float, *, cluster: bool
    ) -> Op[str | None]:
        """:meth:`wait_for_work`, returning *which* routing key's wake list was pushed to
        (the token names its key), or None after ``timeout`` s: a woken worker fetches
        from that key alone instead of sweeping every key it serves."""
        by_wake = {self.route(rk).wake: rk for rk in routing_keys}
        key = yield from self._block_key(list(by_wake), timeout, cluster=cluster)
        return None if key is None else by_wake.get(key)

    def wait_for_handoff(
        self, handoffs: Mapping[str, str], routing_keys: Iterable[str], timeout: float
    ) -> Op[Woken | None]:
        """Block until a submit hands a job to one of ``handoffs`` (routing key -> the
        fetch id registered idle there, :meth:`fetch_batch`) or a wake token of one of
        ``routing_keys`` is pushed; None after ``timeout`` s. Single server only (the
        keys span routing keys' slots).

        The pop is not resent after a lost reply (``Call.resend``): the job it took is
        leased to the fetch id, and a fetch with that id returns it.
        """
        by_key: dict[str, tuple[str, bool]] = {
            self.route(rk).handoff(fid): (rk, True) for rk, fid in handoffs.items()
        }
        by_key.update((self.route(rk).wake, (rk, False)) for rk in routing_keys)
        pop = command("BLPOP", *by_key, max(timeout, 0.001))
        pop.resend = False
        reply = yield pop
        if not reply:
            return None
        rk, handed = by_key[str(reply[0])]
        return Woken(rk, parse_handoff(str(reply[1])) if handed else None)

    def wait_for_due(
        self, routing_keys: Iterable[str], timeout: float, *, cluster: bool
    ) -> Op[bool]:
        """Block until a sooner delayed job is scheduled on one of ``routing_keys`` (True).

        Waits on the routes' schedwake lists (pushed by enqueue and fail when a job is
        scheduled); False after ``timeout`` s.
        """
        woken = yield from self.wait_for_due_route(routing_keys, timeout, cluster=cluster)
        return woken is not None

    def wait_for_due_route(
        self, routing_keys: Iterable[str], timeout: float, *, cluster: bool
    ) -> Op[str | None]:
        """:meth:`wait_for_due`, returning which routing key got a sooner job (or None)."""
        by_wake = {self.route(rk).schedwake: rk for rk in routing_keys}
        key = yield from self._block_key(list(by_wake), timeout, cluster=cluster)
        return None if key is None else by_wake.get(key)

    def _block(self, keys: Sequence[str], timeout: float, *, cluster: bool) -> Op[bool]:
        """Block until a token is pushed to one of ``keys`` (True) or ``timeout`` s pass."""
        key = yield from self._block_key(keys, timeout, cluster=cluster)
        return key is not None

    def _block_key(self, keys: Sequence[str], timeout: float, *, cluster: bool) -> Op[str | None]:
        """Block until a token is pushed to one of ``keys`` (returns that key) or
        ``timeout`` s pass (None).

        A blocking pop can't span hash slots, so on Redis Cluster several keys are
        waited on in turn, each for its share of the timeout.
        """
        if cluster and len(keys) > 1:
            for key in keys:
                if (yield command("BLPOP", key, max(timeout / len(keys), 0.001))):
                    return key
            return None
        reply = yield command("BLPOP", *keys, max(timeout, 0.001))
        return str(reply[0]) if reply else None

    # -- reading and managing jobs ---------------------------------------------------------

    def inspect(self, routing_key: str, job_id: str) -> Op[Job | None]:
        """The job with its live status, or None when neither it nor its result exists."""
        r = self.route(routing_key)
        record, attempts, error, state, due, result, stored, progress = yield script_call(
            _SCRIPTS["inspect"],
            (r.jobs, r.attempts, r.errors, r.leases, r.scheduled, r.dead, r.result(job_id),
             r.progress(job_id)),
            (job_id,),
        )  # fmt: skip
        if record:
            job = decode_job(record, attempts=_count(attempts), error=error, status=_STATES[state])
            if state == "scheduled":  # a delay or a retry in backoff: when it is due
                job.scheduled_for = datetime.fromtimestamp(int(due) / 1000, UTC)
            if progress and state == "processing":
                reported = orjson.loads(progress)
                if reported.get("attempt", job.attempts) == job.attempts:  # not an earlier one's
                    job.progress, job.progress_info = reported["percent"], reported.get("info")
            return job
        if result and stored:
            outcome = JobResult.model_validate_json(result)
            job = decode_job(stored, error=outcome.error, status=outcome.status)
            job.traceback = outcome.traceback
            job.updated_at = outcome.completed_at
            return job
        return None

    def find_route(self, job_id: str) -> Op[str | None]:
        """The routing key holding ``job_id`` (live or with a kept result), or None.

        An explicit id is looked up in the id index (one read); a generated one, or
        one whose entry expired, by asking every known routing key.
        """
        entry = yield command("GET", self.keys.job_id(job_id))
        if entry:
            owner: str = entry.partition("|")[0]
            if (yield from self.holds(owner, job_id)):
                return owner
        routes = yield from self.routes()
        if not routes:
            return None
        checks: list[Call] = []
        for rk in routes:
            r = self.route(rk)
            checks += (command("HEXISTS", r.jobs, job_id), command("EXISTS", r.result(job_id)))
        found = yield Batch(checks)
        for i, rk in enumerate(routes):
            if found[2 * i] or found[2 * i + 1]:
                return rk
        return None

    def result(self, routing_key: str, job_id: str) -> Op[JobResult | None]:
        """The stored result, or None when the job has not finished (or it expired)."""
        reply = yield command("HGET", self.route(routing_key).result(job_id), "result")
        return JobResult.model_validate_json(reply) if reply else None

    def wait_result(self, routing_key: str, job_id: str, timeout: float) -> Op[JobResult | None]:
        """Block until the result exists (pushed, never polled); None after ``timeout`` s.

        The result is read first, so a result written before the waiter arrived is never
        missed; then the waiter blocks on the job's notify list, and passes the token on
        so that other waiters of the same job wake too.
        """
        r = self.route(routing_key)
        deadline = time.monotonic() + timeout
        while True:
            found = yield from self.result(routing_key, job_id)
            if found is not None:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            token = yield command(
                "BLPOP", r.notify(job_id), min(max(remaining, 0.001), MAX_BLOCK_SECONDS)
            )
            if token is not None:
                yield Batch(
                    [
                        command("RPUSH", r.notify(job_id), 1),
                        command("PEXPIRE", r.notify(job_id), NOTIFY_TTL_MS),
                    ]
                )

    def cancel(self, routing_key: str, job_id: str, result: str, ttl_ms: int) -> Op[CancelCode]:
        """Cancel a job that has not started; returns what cancel.lua says."""
        r = self.route(routing_key)
        reply = yield script_call(
            _SCRIPTS["cancel"],
            (
                r.jobs,
                r.attempts,
                r.errors,
                r.leases,
                r.scheduled,
                r.dead,
                *r.queues,
                r.result(job_id),
                r.notify(job_id),
                r.stats,
                *r.flow,
            ),
            (job_id, result, _kept(ttl_ms), NOTIFY_TTL_MS),
        )
        return CancelCode(reply)

    def stats(self, routing_key: str, due_within: float = 0.0) -> Op[QueueStats]:
        """Depth per priority, scheduled, in flight, dead and oldest ready age: O(1) work;
        and the scheduled jobs due within ``due_within`` seconds (O(log n))."""
        r = self.route(routing_key)
        reply = yield script_call(
            _SCRIPTS["stats"],
            (*r.queues, r.scheduled, r.leases, r.dead, r.jobs, r.paused, r.groups,
             *(r.grouped(p) for p in PRIORITY_ORDER)),
            (max(0, int(due_within * 1000)),),
        )  # fmt: skip
        now = self.clock()
        oldest: float | None = None
        for head in reply[6:9]:
            if head:
                age = now - _ready_since(head, now)
                oldest = age if oldest is None else max(oldest, age)
        return QueueStats(
            routing_key=routing_key,
            depth={p: int(reply[i]) for i, p in enumerate(PRIORITY_ORDER)},
            scheduled=int(reply[3]),
            in_flight=int(reply[4]),
            dead=int(reply[5]),
            oldest_age=None if oldest is None else max(oldest, 0.0),
            due=int(reply[9]),
            paused=_paused_of(reply[10]),
        )

    def counters(self, routing_key: str) -> Op[dict[str, int]]:
        """Lifetime counters of a routing key: enqueued, completed, failed, retried, reaped."""
        reply = yield command("HGETALL", self.route(routing_key).stats)
        return {k: int(v) for k, v in reply.items()}

    def list_jobs(
        self, routing_key: str, state: JobState, offset: int = 0, count: int = 50
    ) -> Op[tuple[list[Job], int]]:
        """A page of one state's jobs and how many are in that state.

        ``ready``: queue order, high priority first; ``scheduled``: soonest due first
        (``scheduled_for`` is the due time); ``in-flight``: leases in deadline order;
        ``dead``: newest first (``updated_at`` is when it was dead-lettered). A read, not
        a snapshot: a job that moves on between the two round trips is left out.
        """
        r = self.route(routing_key)
        ids, stamps, total = yield from self._ids_in(r, state, offset, count)
        if not ids:
            return [], total
        records, attempts, errors = yield Batch(
            [command("HMGET", key, *ids) for key in (r.jobs, r.attempts, r.errors)]
        )
        jobs = []
        for i in range(len(ids)):
            if not records[i]:
                continue
            try:
                job = decode_job(
                    records[i],
                    attempts=int(attempts[i] or 0),
                    error=errors[i] or "",
                    status=_LISTED_STATUS[state],
                )
            except ValueError:
                continue
            stamp = stamps[i]
            if stamp is not None:
                at = datetime.fromtimestamp(stamp / 1000, UTC)
                if state == "scheduled":
                    job.scheduled_for = at
                elif state == "dead":
                    job.updated_at = at
            jobs.append(job)
        return jobs, total

    def _ids_in(
        self, r: RouteKeys, state: JobState, offset: int, count: int
    ) -> Op[tuple[list[str], list[float | None], int]]:
        if state == "ready":
            lengths = yield Batch([command("LLEN", q) for q in r.queues])
            ranges: list[tuple[str, int, int]] = []
            skip = offset
            for queue, length in zip(r.queues, lengths, strict=True):
                take = min(max(length - skip, 0), count - sum(n for _, _, n in ranges))
                if take > 0:
                    ranges.append((queue, skip, take))
                skip = max(skip - length, 0)
            pages = []
            if ranges:
                pages = yield Batch([command("LRANGE", q, s, s + n - 1) for q, s, n in ranges])
            ids = [job_id for page in pages for job_id in page]
            return ids, [None] * len(ids), sum(int(n) for n in lengths)
        key = {"scheduled": r.scheduled, "in-flight": r.leases, "dead": r.dead}[state]
        order = "ZREVRANGE" if state == "dead" else "ZRANGE"
        total, page = yield Batch(
            [
                command("ZCARD", key),
                command(order, key, offset, offset + count - 1, "WITHSCORES"),
            ]
        )
        pairs = _pairs(page)
        return [p[0] for p in pairs], [p[1] for p in pairs], int(total)

    def run_now(self, routing_key: str, job_id: str) -> Op[bool]:
        """Make a delayed job or a retry in backoff due now and promote it; False if it
        was not scheduled."""
        r = self.route(routing_key)
        changed = yield command("ZADD", r.scheduled, "XX", "CH", 1, job_id)
        if not changed:
            return False
        yield from self.promote(routing_key)  # (which settles the due index)
        return True

    # -- groups and limits ------------------------------------------------------------------

    def set_limit(self, routing_key: str, key: str, spec: str) -> Op[int]:
        """Store (``spec`` "interval ms|burst|concurrency") or remove (``spec`` "") a limit.

        Returns how many parked group tokens went back to their queues (set_limit.lua).
        """
        r = self.route(routing_key)
        reply = yield script_call(
            _SCRIPTS["set_limit"], (r.wake, *r.queues, r.paused, *r.flow), (key, spec)
        )
        return int(reply)

    def limits(self, routing_key: str) -> Op[dict[str, str]]:
        """The stored limits of a routing key: key -> "interval ms|burst|concurrency"."""
        reply = yield command("HGETALL", self.route(routing_key).limits)
        return {k: v for k, v in reply.items() if k != "*"}

    # -- progress ---------------------------------------------------------------------------

    def set_progress(
        self, routing_key: str, job_id: str, attempt: int, percent: float, info: Any
    ) -> Op[bool]:
        """Record a running job's progress and wake its watchers; False when the lease
        is no longer this attempt's. Raises TypeError for an ``info`` that is not JSON."""
        r = self.route(routing_key)
        body = orjson.dumps({"percent": percent, "info": info, "attempt": attempt}).decode()
        watchers = yield command("SMEMBERS", r.watchers(job_id))
        reply = yield script_call(
            _SCRIPTS["set_progress"],
            (r.progress(job_id), r.leases, r.attempts, *sorted(watchers)),
            (job_id, attempt, body, PROGRESS_TTL_MS),
        )
        return bool(reply)

    def watch_start(self, routing_key: str, job_id: str, watcher: str) -> Op[str]:
        """Register a watcher of ``job_id``; returns its watch list (see :meth:`watch_wait`)."""
        r = self.route(routing_key)
        key = r.watch(job_id, watcher)
        yield Batch(
            [
                command("SADD", r.watchers(job_id), key),
                command("PEXPIRE", r.watchers(job_id), PROGRESS_TTL_MS),
            ]
        )
        return key

    def watch_wait(self, routing_key: str, job_id: str, key: str, timeout: float) -> Op[str | None]:
        """Block until progress is reported ("progress"), the result is written
        ("result"; the token is passed on to other waiters), or ``timeout`` s (None)."""
        r = self.route(routing_key)
        notify = r.notify(job_id)
        popped = yield command("BLPOP", key, notify, min(max(timeout, 0.001), MAX_BLOCK_SECONDS))
        if popped is None:
            return None
        if popped[0] == notify:
            yield Batch([command("RPUSH", notify, 1), command("PEXPIRE", notify, NOTIFY_TTL_MS)])
            return "result"
        return "progress"

    def watch_stop(self, routing_key: str, job_id: str, key: str) -> Op[None]:
        r = self.route(routing_key)
        yield Batch([command("SREM", r.watchers(job_id), key), command("DEL", key)])

    def progress(self, routing_key: str, job_id: str) -> Op[tuple[float, Any] | None]:
        """The last progress reported by a running job: (percent, info), or None."""
        reply = yield command("GET", self.route(routing_key).progress(job_id))
        if not reply:
            return None
        data = orjson.loads(reply)
        return float(data["percent"]), data.get("info")

    # -- pause and resume ------------------------------------------------------------------

    def pause(
        self, routing_key: str, priorities: Iterable[Priority], *, paused: bool = True
    ) -> Op[list[Priority]]:
        """Pause (or resume, ``paused=False``) priorities of a routing key; returns those paused.

        fetch.lua serves no paused queue from the next fetch on; a resume wakes an idle
        worker, which passes the wake on while ready jobs remain (pause.lua).
        """
        r = self.route(routing_key)
        mask = yield script_call(
            _SCRIPTS["pause"], (r.paused, r.wake), (serve_mask(priorities), "1" if paused else "0")
        )
        return _paused_of(mask)

    def paused(self, routing_key: str) -> Op[list[Priority]]:
        """The paused priorities of a routing key (empty when it is not paused): one GET.

        For the operator's autoscaler too: a paused backlog is no reason to scale up.
        """
        mask = yield command("GET", self.route(routing_key).paused)
        return _paused_of(mask)

    def paused_routes(self, routing_keys: Sequence[str]) -> Op[dict[str, list[Priority]]]:
        """The routing keys among ``routing_keys`` with something paused, and what."""
        if not routing_keys:
            return {}
        masks = yield Batch([command("GET", self.route(rk).paused) for rk in routing_keys])
        found = {rk: _paused_of(m) for rk, m in zip(routing_keys, masks, strict=True)}
        return {rk: p for rk, p in found.items() if p}

    # -- dead-letter queue -------------------------------------------------------------------

    def dead_letters(self, routing_key: str, offset: int = 0, count: int = 50) -> Op[list[DeadJob]]:
        """A page of the dead-letter queue, newest first."""
        r = self.route(routing_key)
        reply = yield script_call(
            _SCRIPTS["dead_letters"], (r.dead, r.jobs, r.attempts, r.errors), (offset, count)
        )
        rows = []
        for i in range(0, len(reply), 5):
            job_id, at, record, attempts, error = reply[i : i + 5]
            try:
                job: Job | None = decode_job(
                    record, attempts=_count(attempts), error=error, status=JobStatus.FAILED
                )
            except ValueError:
                job = None
            rows.append(
                DeadJob(
                    job,
                    job_id,
                    datetime.fromtimestamp(int(at) / 1000, UTC),
                    _count(attempts),
                    split_error(error)[0],
                    record,
                )
            )
        return rows

    def requeue_dead(self, routing_key: str, job_ids: Sequence[str]) -> Op[int]:
        """Move dead-lettered jobs back to their queue with a fresh retry budget."""
        r = self.route(routing_key)
        keys = [r.dead, r.jobs, r.attempts, r.errors, r.wake, *r.queues]
        keys += [r.result(j) for j in job_ids]
        keys += r.flow
        reply = yield script_call(_SCRIPTS["requeue_dead"], keys, job_ids)
        return int(reply)

    def stored_errors(self, routing_key: str, job_ids: Sequence[str]) -> Op[list[str | None]]:
        """The error history stored for each job (None where there is none)."""
        if not job_ids:
            return []
        reply = yield command("HMGET", self.route(routing_key).errors, *job_ids)
        return list(reply)

    def delete_dead(self, routing_key: str, job_id: str) -> Op[bool]:
        """Delete one dead-lettered job and its record; False if it was not dead-lettered."""
        r = self.route(routing_key)
        reply = yield script_call(
            _SCRIPTS["delete_dead"], (r.dead, r.jobs, r.attempts, r.errors), (job_id,)
        )
        return bool(reply)

    def dead_ids(self, routing_key: str, count: int) -> Op[list[str]]:
        """Up to ``count`` dead-lettered ids, oldest first."""
        reply = yield command("ZRANGE", self.route(routing_key).dead, 0, count - 1)
        return list(reply)

    def purge_dead(self, routing_key: str, count: int) -> Op[int]:
        """Delete up to ``count`` of the oldest dead-lettered jobs; returns how many went."""
        r = self.route(routing_key)
        reply = yield script_call(
            _SCRIPTS["purge_dead"], (r.dead, r.jobs, r.attempts, r.errors), (count,)
        )
        return int(reply)

    # -- cron schedules (written by code or the operator, read by the scheduler) -------------

    def put_schedule(self, schedule: Schedule) -> Op[None]:
        yield command("HSET", self.keys.schedules, schedule.id, schedule.model_dump_json())

    def delete_schedule(self, schedule_id: str) -> Op[bool]:
        removed, _ = yield Batch(
            [
                command("HDEL", self.keys.schedules, schedule_id),
                command("HDEL", self.keys.schedule_status, schedule_id),
            ]
        )
        return bool(removed)

    def schedules(self) -> Op[list[Schedule]]:
        reply = yield command("HGETALL", self.keys.schedules)
        return [Schedule.model_validate_json(v) for _, v in sorted(reply.items())]

    def code_schedules(self) -> Op[list[Schedule]]:
        """The schedules the cron leader last published from code (empty when none runs)."""
        reply = yield command("GET", self.keys.code_schedules)
        if not reply:
            return []
        return [Schedule.model_validate(s) for s in orjson.loads(reply)]

    def put_code_schedules(self, schedules: Sequence[Schedule], ttl_ms: int) -> Op[None]:
        """Publish the code-defined schedules (one SET: a reader never sees half a list)."""
        data = orjson.dumps([s.model_dump(mode="json") for s in schedules])
        yield command("SET", self.keys.code_schedules, data, "PX", ttl_ms)

    def schedule_statuses(self, schedule_ids: Sequence[str]) -> Op[list[ScheduleStatus | None]]:
        if not schedule_ids:
            return []
        reply = yield command("HMGET", self.keys.schedule_status, *schedule_ids)
        return [ScheduleStatus.model_validate_json(r) if r else None for r in reply]

    def forget_route(self, routing_key: str) -> Op[bool]:
        """Drop an empty routing key from the set of known routes; False if it holds jobs.

        Not atomic across the two slots (the set has no hash tag): a job submitted in
        between keeps its queue, and the route is added back by the next client to
        submit there.
        """
        stats = yield from self.stats(routing_key)
        if stats.queued or stats.scheduled or stats.in_flight or stats.dead:
            return False
        removed = yield command("SREM", self.keys.routes, routing_key)
        if self.due_index:  # its entries go too (settled: a job stored meanwhile keeps its)
            yield from self.settle_leases([routing_key])
            yield from self.settle_scheduled([routing_key])
        return bool(removed)

    def schedule_status(self, schedule_id: str) -> Op[ScheduleStatus | None]:
        reply = yield command("HGET", self.keys.schedule_status, schedule_id)
        return ScheduleStatus.model_validate_json(reply) if reply else None

    def put_schedule_status(self, status: ScheduleStatus) -> Op[None]:
        yield command(
            "HSET", self.keys.schedule_status, status.schedule_id, status.model_dump_json()
        )

    # -- leader election ------------------------------------------------------------------------

    def lead(
        self, name: str, identity: str, lease_ms: int, *, release: bool = False
    ) -> Op[int | None]:
        """Take or keep the leader lock ``name``; the fencing token while held, else None."""
        reply = yield script_call(
            _SCRIPTS["lead"],
            (self.keys.leader(name), self.keys.leader_fence(name)),
            (identity, lease_ms, "release" if release else ""),
        )
        return None if reply is None else int(reply)

    # -- worker heartbeats ---------------------------------------------------------------------

    def heartbeat(self, info: WorkerInfo, ttl_s: float) -> Op[None]:
        """Publish a worker's record; it expires unless renewed, and old ones age out
        (by Redis' clock: a host whose clock is fast must not age out the others)."""
        seconds, micros = yield command("TIME")
        now = int(seconds) * 1000 + int(micros) // 1000
        ttl_ms = int(ttl_s * 1000)
        yield Batch(
            [
                command("SET", self.keys.worker(info.id), info.model_dump_json(), "PX", ttl_ms),
                command("ZADD", self.keys.workers, now, info.id),
                command("ZREMRANGEBYSCORE", self.keys.workers, "-inf", now - ttl_ms),
            ]
        )

    def forget_worker(self, worker_id: str) -> Op[None]:
        yield Batch(
            [
                command("DEL", self.keys.worker(worker_id)),
                command("ZREM", self.keys.workers, worker_id),
            ]
        )

    def workers(self) -> Op[list[WorkerInfo]]:
        """Workers seen within their heartbeat TTL."""
        ids = yield command("ZRANGE", self.keys.workers, 0, -1)
        if not ids:
            return []
        records = yield Batch([command("GET", self.keys.worker(i)) for i in ids])
        return [WorkerInfo.model_validate_json(r) for r in records if r]


def _paused_of(mask: str | None) -> list[Priority]:
    """The priorities a paused mask ("1" paused, high, normal, low) names; [] for None."""
    if not mask:
        return []
    return [p for p, c in zip(PRIORITY_ORDER, mask, strict=False) if c == "1"]


def _count(value: Any) -> int:
    """A stored attempts counter as a number; 0 for one that is not a whole number (a
    corrupted counter: the fetch script dead-letters such a job with the reason)."""
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _first_score(reply: Any) -> float:
    """The score in a one-member ZRANGE WITHSCORES reply: flat ``[member, score]`` off a
    lane, or ``[[member, score]]`` once redis-py's callback has paired it."""
    first = reply[0]
    return float(first[1] if isinstance(first, list | tuple) else reply[1])


def _timing_keys(r: RouteKeys, minute: int) -> tuple[str, str, str]:
    """The keys ack and fail count into, after the per-job keys: this hour's throughput
    counters, then this hour's and this day's timing histograms."""
    hour = minute // 60
    return r.throughput(hour), r.timing_minutes(hour), r.timing_hours(hour // 24)


def _kept(ttl_ms: int) -> int:
    """How long a result is kept: its TTL, or just long enough for a waiter when that is 0.

    A result with TTL 0 is still written briefly: a waiter woken by the push must find
    it, or it would wake, find nothing and wait again until it timed out.
    """
    return ttl_ms if ttl_ms > 0 else NOTIFY_TTL_MS


def _ready_since(record: str, now: float) -> float:
    """When a queued job became ready: its due time, else its creation time (epoch s).

    ``now`` for a record that says neither (it then counts as just ready).
    """
    try:
        data = orjson.loads(record)
        stamp = data.get("scheduled_for") or data["created_at"]
        return datetime.fromisoformat(stamp).timestamp()
    except (ValueError, KeyError, TypeError):
        return now

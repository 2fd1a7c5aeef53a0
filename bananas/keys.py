"""Every Redis key Bananas uses, built in one place.

A routing key owns a family of keys that share the hash tag ``{<routing key>}``
so that, on Redis Cluster, all of them live in one slot and a Lua script can
touch any of them atomically. Keys that belong to no routing key (the set of
known routes, worker heartbeats, cron schedules, leader locks) live outside any
tag; no script ever mixes them with a routing key's keys.

Layout for routing key ``gpu`` (prefix ``bananas``)::

    bananas:route:{gpu}:queue:high      LIST   ready job ids, head first
    bananas:route:{gpu}:queue:normal    LIST
    bananas:route:{gpu}:queue:low       LIST
    bananas:route:{gpu}:jobs            HASH   job id -> job record (JSON, immutable)
    bananas:route:{gpu}:attempts        HASH   job id -> deliveries so far (lease token)
    bananas:route:{gpu}:errors          HASH   job id -> last error text
    bananas:route:{gpu}:leases          ZSET   job id -> lease deadline (ms)
    bananas:route:{gpu}:scheduled       ZSET   job id -> due time (ms): delays and retries
    bananas:route:{gpu}:dead            ZSET   job id -> time it was dead-lettered (ms)
    bananas:route:{gpu}:wake            LIST   wake-up tokens for idle workers
    bananas:route:{gpu}:schedwake       LIST   wake-up token for promoters: an earlier due time
    bananas:route:{gpu}:stats           HASH   counters: enqueued, completed, failed, ...
    bananas:route:{gpu}:result:<id>     HASH   result + job record, expires (TTL)
    bananas:route:{gpu}:notify:<id>     LIST   one token pushed when the result is written
    bananas:route:{gpu}:throughput:<h>  HASH   "<minute>:c|f|r" -> jobs completed, failed, retried
                                               in that minute (epoch minutes), one key per hour
                                               <h> (epoch hours), expires after 8 days
    bananas:route:{gpu}:unique:<key>    STRING id (JSON) of the job holding a unique key, expires
    bananas:route:{gpu}:grouped:high    ZSET   ready jobs of groups, lex order: group, order, id
    bananas:route:{gpu}:grouped:normal  ZSET
    bananas:route:{gpu}:grouped:low     ZSET
    bananas:route:{gpu}:groups          HASH   group bookkeeping: tokens, slots, rate state
    bananas:route:{gpu}:members         HASH   id -> its member in grouped:<p> while it waits
    bananas:route:{gpu}:parked          HASH   group -> its token, parked at its concurrency limit
    bananas:route:{gpu}:limits          HASH   limit key (group, pattern) -> "interval|burst|conc"
    bananas:route:{gpu}:progress:<id>   STRING a running job's progress (JSON), expires
    bananas:route:{gpu}:watchers:<id>   SET    the watch lists of a job's watchers, expires
    bananas:route:{gpu}:watch:<id>:<w>  LIST   one watcher's wake token: progress changed
    bananas:route:{gpu}:retention       HASH   max_dead, max_dead_age_ms: the DLQ's bounds here
    bananas:route:{gpu}:paused          STRING paused priorities: "1" paused, high normal low;
                                               4th character "1": a job-name limit exists
    bananas:route:{gpu}:fetch:<f>       LIST   (job id, token) pairs leased under fetch id <f>,
                                               kept for a lease (a re-sent fetch returns them)
    bananas:route:{gpu}:idle            ZSET   "<fetch id>:<serve mask>:<lease ms>" -> deadline:
                                               idle workers a submit may lease a job to (single hop)
    bananas:route:{gpu}:handoff:<f>     LIST   the one job a submit leased to idle registration <f>
                                               ("<token> <id chars> <id><record>"), kept for a lease

    bananas:jobid:{<id>}                STRING routing key and claim time of an explicit job id
                                               ("<routing key>|<ms>"), expires; its own slot
    bananas:route:{gpu}:completed       ZSET   job id -> when it completed (ms), the newest 10,000:
                                               the dashboard's results page
    bananas:route:{gpu}:timing:m:<h>    HASH   "<minute>:w|r<bucket>" -> first attempts that waited,
                                               attempts that ran, that long (``bananas.timings``
                                               buckets), one key per hour, expires after 3 hours
    bananas:route:{gpu}:timing:h:<d>    HASH   "<hour>:w|r<bucket>": the same per hour, one key
                                               per day <d> (epoch days), expires after 8 days

    bananas:routes                      SET    routing keys that have ever held a job
    bananas:workers                     ZSET   worker id -> last heartbeat (ms)
    bananas:worker:<id>                 STRING worker info (JSON), expires
    bananas:schedules                   HASH   schedule id -> schedule definition (JSON)
    bananas:schedule-status             HASH   schedule id -> schedule status (JSON)
    bananas:code-schedules              STRING schedules defined in code (JSON list), expires
    bananas:leader:{<name>}             STRING leader lock holder, expires
    bananas:leader:{<name>}:fence       STRING fencing token counter
    bananas:audit                       LIST   dashboard audit log, newest first (JSON), capped

A workflow owns a family of keys under the hash tag ``{wf:<id>}``, so its graph and
all of its bookkeeping live in one slot and one script changes them atomically; its
nodes' jobs live on their own routing keys (other slots)::

    bananas:wf:{wf:<id>}:meta           HASH   status, counters, output shape, first failure
    bananas:wf:{wf:<id>}:graph          HASH   deps:<n> / next:<n> (comma lists), join:<n>, tol:<n>
    bananas:wf:{wf:<id>}:specs          HASH   node -> job spec (JSON) of a task node
    bananas:wf:{wf:<id>}:pending        HASH   node -> dependencies not finished yet
    bananas:wf:{wf:<id>}:state          HASH   node -> waiting | queued | done | dead
    bananas:wf:{wf:<id>}:results        HASH   node -> result (JSON)
    bananas:wf:{wf:<id>}:errors         HASH   node -> error text of a dead-lettered node
    bananas:wf:{wf:<id>}:notify         LIST   one token pushed when the workflow finishes
    bananas:wf:{wf:<id>}:roots          LIST   the nodes to queue at start, until they are

    bananas:workflows:unstarted         ZSET   workflow id -> start deadline (ms), until its
                                               roots are queued (the promoter sweeps it)

The due indexes (not on Redis Cluster, where they would live in another slot than the
sets they index, so no script could keep them in step)::

    bananas:due:leases                  ZSET   a route's ``leases`` key -> a time (ms) no
                                               later than its earliest lease deadline
    bananas:due:scheduled               ZSET   a route's ``scheduled`` key -> a time (ms) no
                                               later than its earliest due time

A script that adds to a route's ``leases`` or ``scheduled`` set lowers the route's entry
(``ZADD LT``); the script that visits the route (``due_settle``, ``promote``) sets it to
the true earliest or removes it. So the reaper and the promoter ask one key which routes
have something due, instead of one command per route (docs/reliability.md, "Many
routing keys").
"""

from __future__ import annotations

from dataclasses import dataclass

from bananas.models import PRIORITY_ORDER, Priority
from bananas.routing import ROUTING_KEY_RULE, is_valid_routing_key

__all__ = ["DEFAULT_PREFIX", "ROUTING_KEY_RULE", "KeySpace", "RouteKeys", "is_valid_routing_key"]

DEFAULT_PREFIX = "bananas"


@dataclass(frozen=True, slots=True)
class RouteKeys:
    """The keys of one routing key. Build with :meth:`KeySpace.route`."""

    routing_key: str
    base: str

    def queue(self, priority: Priority) -> str:
        """The ready list for one priority."""
        return f"{self.base}:queue:{priority.value}"

    @property
    def queues(self) -> tuple[str, str, str]:
        """The ready lists in priority order: high, normal, low."""
        high, normal, low = (self.queue(p) for p in PRIORITY_ORDER)
        return high, normal, low

    @property
    def jobs(self) -> str:
        return f"{self.base}:jobs"

    @property
    def attempts(self) -> str:
        return f"{self.base}:attempts"

    @property
    def errors(self) -> str:
        return f"{self.base}:errors"

    @property
    def leases(self) -> str:
        return f"{self.base}:leases"

    @property
    def scheduled(self) -> str:
        return f"{self.base}:scheduled"

    @property
    def dead(self) -> str:
        return f"{self.base}:dead"

    @property
    def wake(self) -> str:
        return f"{self.base}:wake"

    @property
    def schedwake(self) -> str:
        return f"{self.base}:schedwake"

    @property
    def stats(self) -> str:
        return f"{self.base}:stats"

    def grouped(self, priority: Priority) -> str:
        """The ready jobs of every group of one priority (see the prelude's flow block)."""
        return f"{self.base}:grouped:{priority.value}"

    @property
    def groups(self) -> str:
        return f"{self.base}:groups"

    @property
    def limits(self) -> str:
        return f"{self.base}:limits"

    @property
    def members(self) -> str:
        return f"{self.base}:members"

    @property
    def parked(self) -> str:
        return f"{self.base}:parked"

    @property
    def flow(self) -> tuple[str, ...]:
        """The flow keys, in the order the scripts take them last in KEYS (the prelude)."""
        return (
            self.groups,
            self.limits,
            self.members,
            self.parked,
            *(self.grouped(p) for p in PRIORITY_ORDER),
            self.scheduled,
            self.schedwake,
        )

    def unique(self, unique_key: str) -> str:
        """The lock of one unique key (``unique_for`` / ``debounce``), in the route's slot."""
        return f"{self.base}:unique:{unique_key}"

    @property
    def retention(self) -> str:
        return f"{self.base}:retention"

    @property
    def paused(self) -> str:
        return f"{self.base}:paused"

    def result(self, job_id: str) -> str:
        return f"{self.base}:result:{job_id}"

    def fetch(self, fetch_id: str) -> str:
        """LIST of the (job id, token) pairs one fetch leased, kept for a lease so that
        the fetch re-sent after a lost reply returns them (``fetch.lua``)."""
        return f"{self.base}:fetch:{fetch_id}"

    @property
    def idle(self) -> str:
        """ZSET of the idle registrations of this routing key's workers (single hop):
        member ``<fetch id>:<serve mask>:<lease ms>``, score its deadline (Redis' ms)."""
        return f"{self.base}:idle"

    def handoff(self, fetch_id: str) -> str:
        """LIST the enqueue script pushes the job it leased to idle registration
        ``fetch_id`` onto; the worker blocks on it (single hop). Enqueue builds this
        name (and :meth:`fetch`'s) from :attr:`idle` and the registration's fetch id."""
        return f"{self.base}:handoff:{fetch_id}"

    def notify(self, job_id: str) -> str:
        return f"{self.base}:notify:{job_id}"

    def progress(self, job_id: str) -> str:
        return f"{self.base}:progress:{job_id}"

    def watchers(self, job_id: str) -> str:
        return f"{self.base}:watchers:{job_id}"

    def watch(self, job_id: str, watcher: str) -> str:
        return f"{self.base}:watch:{job_id}:{watcher}"

    def throughput(self, hour: int) -> str:
        """Per-minute outcome counters of one hour (``hour``: epoch seconds // 3600)."""
        return f"{self.base}:throughput:{hour}"

    @property
    def completed(self) -> str:
        """ZSET of the newest completed jobs (id -> completion ms), for the results page."""
        return f"{self.base}:completed"

    def timing_minutes(self, hour: int) -> str:
        """Per-minute queue-wait and run-time histograms of one hour (epoch hours)."""
        return f"{self.base}:timing:m:{hour}"

    def timing_hours(self, day: int) -> str:
        """Per-hour queue-wait and run-time histograms of one day (epoch days)."""
        return f"{self.base}:timing:h:{day}"


@dataclass(frozen=True, slots=True)
class WorkflowKeys:
    """The keys of one workflow, all sharing the hash tag ``{wf:<id>}``.

    Build with :meth:`KeySpace.workflow`; :attr:`all` lists the keys a finished
    workflow expires together (its ``notify`` list expires on its own TTL).
    """

    workflow_id: str
    base: str

    @property
    def meta(self) -> str:
        return f"{self.base}:meta"

    @property
    def graph(self) -> str:
        return f"{self.base}:graph"

    @property
    def specs(self) -> str:
        return f"{self.base}:specs"

    @property
    def pending(self) -> str:
        return f"{self.base}:pending"

    @property
    def state(self) -> str:
        return f"{self.base}:state"

    @property
    def results(self) -> str:
        return f"{self.base}:results"

    @property
    def errors(self) -> str:
        return f"{self.base}:errors"

    @property
    def notify(self) -> str:
        return f"{self.base}:notify"

    @property
    def roots(self) -> str:
        """The nodes to queue at start; deleted once they are (not in :attr:`all`)."""
        return f"{self.base}:roots"

    @property
    def all(self) -> tuple[str, str, str, str, str, str, str, str]:
        """Every key in the order the workflow scripts take them in KEYS."""
        return (
            self.meta,
            self.graph,
            self.specs,
            self.pending,
            self.state,
            self.results,
            self.errors,
            self.notify,
        )


def workflow_job_id(workflow_id: str, node: int) -> str:
    """The job id of node ``node`` of a workflow: deterministic, so enqueueing it twice
    (a replayed advance, a second sweep) stores it once."""
    return f"{workflow_id}:{node}"


@dataclass(frozen=True, slots=True)
class KeySpace:
    """Builds every key under one prefix (``BANANAS_PREFIX``, default ``bananas``)."""

    prefix: str = DEFAULT_PREFIX

    def route(self, routing_key: str) -> RouteKeys:
        """Keys of one routing key, all sharing the hash tag ``{routing_key}``."""
        return RouteKeys(routing_key, f"{self.prefix}:route:{{{routing_key}}}")

    @property
    def routes(self) -> str:
        return f"{self.prefix}:routes"

    def job_id(self, job_id: str) -> str:
        """The prefix-wide index entry of an explicit job id (its own Cluster slot)."""
        return f"{self.prefix}:jobid:{{{job_id}}}"

    @property
    def workers(self) -> str:
        return f"{self.prefix}:workers"

    def worker(self, worker_id: str) -> str:
        return f"{self.prefix}:worker:{worker_id}"

    @property
    def schedules(self) -> str:
        return f"{self.prefix}:schedules"

    @property
    def schedule_status(self) -> str:
        return f"{self.prefix}:schedule-status"

    def waithub(self, hub_id: str) -> str:
        """LIST a client's result-wait hub blocks on besides the notify lists: a new
        waiter pushes a token so the hub blocks again with its key (``bananas.waits``)."""
        return f"{self.prefix}:waithub:{hub_id}"

    @property
    def code_schedules(self) -> str:
        """The schedules the cron leader fires from code (``registry.cron``), for listings."""
        return f"{self.prefix}:code-schedules"

    def workflow(self, workflow_id: str) -> WorkflowKeys:
        """Keys of one workflow, all sharing the hash tag ``{wf:<id>}``."""
        return WorkflowKeys(workflow_id, f"{self.prefix}:wf:{{wf:{workflow_id}}}")

    @property
    def workflows_unstarted(self) -> str:
        return f"{self.prefix}:workflows:unstarted"

    def leader(self, name: str) -> str:
        return f"{self.prefix}:leader:{{{name}}}"

    def leader_fence(self, name: str) -> str:
        return f"{self.prefix}:leader:{{{name}}}:fence"

    @property
    def due_leases(self) -> str:
        """The due index of leases: a route's leases key -> no later than its earliest
        lease deadline (ms). Not used on Redis Cluster."""
        return f"{self.prefix}:due:leases"

    @property
    def due_scheduled(self) -> str:
        """The due index of delayed jobs and retries: a route's scheduled key -> no later
        than its earliest due time (ms). Not used on Redis Cluster."""
        return f"{self.prefix}:due:scheduled"

    @property
    def audit(self) -> str:
        """The dashboard's audit log (a capped list, newest entry first)."""
        return f"{self.prefix}:audit"

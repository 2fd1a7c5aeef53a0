"""The due indexes (``KeySpace.due_leases``, ``due_scheduled``): a route's entry is never
later than the earliest score of the set it indexes, whatever the scripts do to that set,
so no lease is reaped and no delayed job is promoted late by a reaper or a promoter that
reads only the index. On Redis Cluster the indexes are off and nothing writes them."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import pytest

from bananas import AsyncClient, Client, JobSpec, Priority
from bananas.broker import Leased, Outcome, new_fetch_id, parse_handoff
from bananas.models import JobResult, JobStatus
from bananas.worker_runtime import Registry, Worker
from tests.support.waiting import eventually

ROUTES = ("a", "b", "c")
STEPS = 400


@pytest.fixture
def qc(redis_url: str, prefix: str) -> Iterator[Client]:
    with Client(redis_url, prefix=prefix) as c:
        yield c


def _violations(c: Client) -> list[str]:
    """Every break of the invariant: a route whose set is not empty has an entry in its
    index, and that entry is no later than the set's earliest score."""
    keys = c.broker.keys
    found = []
    for index, kind in ((keys.due_leases, "leases"), (keys.due_scheduled, "scheduled")):
        for rk in ROUTES:
            key = getattr(c.broker.route(rk), kind)
            first = c.redis.zrange(key, 0, 0, withscores=True)
            if not first:
                continue
            entry = c.redis.zscore(index, key)
            if entry is None or entry > first[0][1]:
                found.append(f"{kind} of {rk}: entry {entry}, earliest {first[0][1]}")
    return found


def _done(item: Leased) -> Outcome:
    body = JobResult(job_id=item.id, status=JobStatus.COMPLETED, result=None)
    return Outcome(item.id, item.attempt, body.model_dump_json(), 60_000)


class Model:
    """Random operations on three routes, through the broker's scripts only."""

    def __init__(self, c: Client, rng: random.Random) -> None:
        self.c, self.rng = c, rng
        self.held: list[tuple[str, Leased]] = []
        #: Single hop: (route, fetch id) registered idle, whose hand-off list may fill.
        self.idle: list[tuple[str, str]] = []

    def route(self) -> str:
        return self.rng.choice(ROUTES)

    def submit(self) -> None:
        delay = self.rng.choice([None, 0.05, 0.5, 3.0, 30.0])
        group = self.rng.choice([None, None, "g1", "g2"])
        self.c.submit("t", routing_key=self.route(), delay=delay, group=group)

    def submit_many(self) -> None:
        rk = self.route()
        specs = [
            JobSpec("t", routing_key=rk, delay=self.rng.choice([None, 0.2, 5.0, 60.0]))
            for _ in range(self.rng.randint(1, 5))
        ]
        self.c.submit_many(specs)

    def submit_unique(self) -> None:
        rk = self.route()
        if self.rng.random() < 0.5:
            self.c.submit("u", routing_key=rk, debounce=self.rng.choice([0.1, 2.0, 20.0]))
        else:
            self.c.submit("v", routing_key=rk, unique_for=30, delay=self.rng.choice([0.1, 9.0]))

    def fetch(self) -> None:
        rk = self.route()
        lease_ms = self.rng.choice([1, 50, 10_000])
        for item in self.c.run(self.c.broker.fetch(rk, self.rng.randint(1, 4), lease_ms)):
            self.held.append((rk, item))

    def register(self) -> None:
        """An idle worker's fetch (single hop): it leases what is ready and registers an
        id, so the next ready submit on the route is leased by enqueue.lua (a hand-off)."""
        rk = self.route()
        lease_ms = self.rng.choice([1, 50, 10_000])
        fetched = self.c.run(
            self.c.broker.fetch_batch(rk, 200, lease_ms, idle_ms=10_000, next_id=new_fetch_id())
        )
        self.held += [(rk, item) for item in fetched.leased]
        if fetched.idle:
            self.idle.append((rk, fetched.idle))

    def take_handed(self) -> None:
        """The registered workers pop what was handed to them."""
        for rk, fetch_id in self.idle:
            entry = self.c.redis.lpop(self.c.broker.route(rk).handoff(fetch_id))
            if entry is not None:
                self.held.append((rk, parse_handoff(entry)))
        self.idle = []

    def _take(self) -> tuple[str, Leased] | None:
        if not self.held:
            return None
        return self.held.pop(self.rng.randrange(len(self.held)))

    def ack(self) -> None:
        if taken := self._take():
            self.c.run(self.c.broker.ack(taken[0], [_done(taken[1])]))

    def fail(self) -> None:
        if taken := self._take():
            rk, item = taken
            retry = self.rng.choice([-1, 10, 400, 20_000])
            out = Outcome(item.id, item.attempt, "{}", 60_000, "boom", retry)
            self.c.run(self.c.broker.fail(rk, [out]))

    def release(self) -> None:
        if taken := self._take():
            rk, item = taken
            self.c.run(self.c.broker.release(rk, [(item.id, item.attempt, Priority.NORMAL)]))

    def renew(self) -> None:
        rk = self.route()
        held = [(i.id, i.attempt) for r, i in self.held if r == rk]
        self.c.run(self.c.broker.renew(rk, held, self.rng.choice([20, 10_000])))

    def reap(self) -> None:
        self.c.run(self.c.broker.reap_next(self.route()))

    def promote(self) -> None:
        self.c.run(self.c.broker.promote(self.route()))

    def settle(self) -> None:
        self.c.run(self.c.broker.settle_leases([self.route()]))
        self.c.run(self.c.broker.settle_scheduled([self.route()]))

    def limit(self) -> None:
        # a rate makes fetch put a group's token in scheduled until the rate allows
        self.c.set_limit(self.rng.choice(["g1", "g2"]), rate="5/s", routing_key=self.route())

    def steps(self) -> list[Callable[[], None]]:
        return [
            self.submit,
            self.submit_many,
            self.submit_unique,
            self.fetch,
            self.fetch,
            self.register,
            self.take_handed,
            self.ack,
            self.fail,
            self.release,
            self.renew,
            self.reap,
            self.promote,
            self.settle,
            self.limit,
        ]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_entry_is_never_later_than_the_earliest_score(qc: Client, seed: int) -> None:
    if not qc.broker.due_index:
        pytest.skip("no due index on Redis Cluster")
    model = Model(qc, random.Random(seed))
    steps = model.steps()
    for n in range(STEPS):
        step = model.rng.choice(steps)
        step()
        assert _violations(qc) == [], f"after step {n} ({step.__name__})"
    # The run did exercise every writer: leases and scheduled jobs were indexed, and
    # submits leased jobs to idle registrations.
    keys = qc.broker.keys
    assert qc.redis.zcard(keys.due_leases) + qc.redis.zcard(keys.due_scheduled) > 0
    handed = sum(int(qc.redis.hget(qc.broker.route(rk).stats, "handed") or 0) for rk in ROUTES)
    assert handed > 0


def test_settling_sets_the_true_earliest_or_removes_the_entry(qc: Client) -> None:
    if not qc.broker.due_index:
        pytest.skip("no due index on Redis Cluster")
    keys, r = qc.broker.keys, qc.broker.route("a")
    qc.submit("t", routing_key="a")
    [item] = qc.run(qc.broker.fetch("a", 1, 60_000))
    deadline = qc.redis.zscore(r.leases, item.id)
    assert qc.redis.zscore(keys.due_leases, r.leases) == deadline
    qc.run(qc.broker.ack("a", [_done(item)]))
    # acked: the entry is stale (early), which is allowed, until a visit settles it
    assert qc.redis.zscore(keys.due_leases, r.leases) == deadline
    assert qc.run(qc.broker.settle_leases(["a"])) == [None]
    assert qc.redis.zscore(keys.due_leases, r.leases) is None
    assert qc.run(qc.broker.due_leases(["a", "b"])) == ([], None)


def test_due_routes_name_only_the_routes_asked_about_that_are_due(qc: Client) -> None:
    if not qc.broker.due_index:
        pytest.skip("no due index on Redis Cluster")
    for rk in ("a", "b", "c"):
        qc.submit("t", routing_key=rk)
    qc.run(qc.broker.fetch("a", 1, 1))  # expires at once
    qc.run(qc.broker.fetch("b", 1, 60_000))
    qc.run(qc.broker.fetch("c", 1, 1))  # due too, but not asked about
    # a 1 ms lease is expired by Redis' clock after its next millisecond
    eventually(lambda: qc.run(qc.broker.due_leases(["a", "b"]))[0] != [], 5)
    due, until = qc.run(qc.broker.due_leases(["a", "b"]))
    assert due == ["a"]
    assert until is not None and 50_000 < until <= 60_000
    reaped, _ = qc.run(qc.broker.reap_next("a"))
    assert reaped.requeued == 1
    # the reap settled a's entry: a holds no lease any more
    assert qc.run(qc.broker.due_leases(["a", "b"]))[0] == []
    assert qc.redis.zscore(qc.broker.keys.due_leases, qc.broker.route("a").leases) is None


def test_a_promote_settles_the_scheduled_entry(qc: Client) -> None:
    if not qc.broker.due_index:
        pytest.skip("no due index on Redis Cluster")
    keys, r = qc.broker.keys, qc.broker.route("a")
    qc.submit("soon", routing_key="a", delay=0.001)
    later = qc.submit("later", routing_key="a", delay=600)
    soon_entry = qc.redis.zscore(keys.due_scheduled, r.scheduled)
    assert soon_entry is not None and soon_entry < qc.redis.zscore(r.scheduled, later)
    # due 1 ms after it was stored, by Redis' clock
    eventually(lambda: qc.run(qc.broker.due_scheduled(["a"]))[0] == ["a"], 5)
    moved, _ = qc.run(qc.broker.promote("a"))
    assert moved == 1
    assert qc.redis.zscore(keys.due_scheduled, r.scheduled) == qc.redis.zscore(r.scheduled, later)


def test_no_index_is_written_on_cluster(redis_url: str, prefix: str) -> None:
    with Client(redis_url, prefix=prefix) as c:
        if c.broker.due_index:
            assert not c.is_cluster
            return
        assert c.is_cluster
        c.submit("t", delay=5)
        c.submit("t")
        assert c.run(c.broker.fetch("default", 1, 1000))
        c.run(c.broker.reap_next("default"))
        c.run(c.broker.promote("default"))
        assert not c.redis.exists(c.broker.keys.due_leases, c.broker.keys.due_scheduled)


def _retry(c: Client) -> None:
    c.submit("t", routing_key="a")
    [item] = c.run(c.broker.fetch("a", 1, 60_000))
    c.run(c.broker.fail("a", [Outcome(item.id, item.attempt, "{}", 60_000, "boom", 5_000)]))


def _throttled(c: Client) -> None:
    c.set_limit("g", rate="1/m", burst=1, routing_key="a")
    for _ in range(2):
        c.submit("t", routing_key="a", group="g")
    assert len(c.run(c.broker.fetch("a", 5, 60_000))) == 1  # the token waits a minute


def _handed(c: Client) -> None:
    # the route's queue drained, an idle registration with a 5 s lease takes the submit
    c.run(c.broker.fetch("a", 10, 3_600_000))
    fetch_id = new_fetch_id()
    fetched = c.run(c.broker.fetch_batch("a", 1, 5_000, fetch_id=fetch_id, idle_ms=10_000))
    assert fetched.idle == fetch_id
    job_id = c.submit("t", routing_key="a")
    [item] = [
        parse_handoff(e) for e in c.redis.lrange(c.broker.route("a").handoff(fetch_id), 0, -1)
    ]
    assert item.id == job_id


def _renewed(c: Client) -> None:
    [item] = c.run(c.broker.fetch("a", 1, 60_000))
    c.run(c.broker.renew("a", [(item.id, item.attempt)], 5_000))  # brought forward


WRITERS: dict[str, tuple[str, Callable[[Client], object]]] = {
    "enqueue": ("scheduled", lambda c: c.submit("t", routing_key="a", delay=5)),
    "enqueue_grouped": ("scheduled", lambda c: c.submit("t", routing_key="a", delay=5, group="g")),
    "enqueue_unique": (
        "scheduled",
        lambda c: c.submit("t", routing_key="a", delay=5, unique_for=60),
    ),
    "debounce": ("scheduled", lambda c: c.submit("t", routing_key="a", debounce=5)),
    "fail": ("scheduled", _retry),
    "fetch_throttled": ("scheduled", _throttled),
    "fetch": ("leases", lambda c: c.run(c.broker.fetch("a", 1, 5_000))),
    "renew": ("leases", _renewed),
    "enqueue_handoff": ("leases", _handed),
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_every_writer_lowers_the_entry_below_a_later_one(qc: Client, writer: str) -> None:
    """A route already indexed at a later time: each script that adds a sooner score to
    the set lowers the entry to it (a writer that forgot would leave it late)."""
    if not qc.broker.due_index:
        pytest.skip("no due index on Redis Cluster")
    kind, write = WRITERS[writer]
    r = qc.broker.route("a")
    index = getattr(qc.broker.keys, f"due_{kind}")
    key = getattr(r, kind)
    if kind == "scheduled":
        qc.submit("later", routing_key="a", delay=3600)
    else:
        qc.submit("later", routing_key="a")
        qc.submit("sooner", routing_key="a")  # (fetched second, by the writer)
        qc.run(qc.broker.fetch("a", 1, 3_600_000))
    before = qc.redis.zscore(index, key)
    assert before is not None
    write(qc)
    earliest = qc.redis.zrange(key, 0, 0, withscores=True)[0][1]
    assert earliest < before, "the writer added a sooner score"
    assert qc.redis.zscore(index, key) == earliest


def test_a_set_of_the_wrong_type_does_not_stop_the_others_settling(qc: Client) -> None:
    if not qc.broker.due_index:
        pytest.skip("no due index on Redis Cluster")
    keys = qc.broker.keys
    for rk in ("a", "b"):
        qc.submit("t", routing_key=rk)
        [item] = qc.run(qc.broker.fetch(rk, 1, 60_000))
        qc.run(qc.broker.ack(rk, [_done(item)]))
    qc.redis.delete(qc.broker.route("a").leases)
    qc.redis.set(qc.broker.route("a").leases, "not a sorted set")
    assert qc.run(qc.broker.settle_leases(["a", "b"])) == [None, None]
    assert qc.redis.zscore(keys.due_leases, qc.broker.route("a").leases) is not None
    assert qc.redis.zscore(keys.due_leases, qc.broker.route("b").leases) is None


def test_a_forgotten_route_leaves_no_entry(qc: Client) -> None:
    if not qc.broker.due_index:
        pytest.skip("no due index on Redis Cluster")
    keys, r = qc.broker.keys, qc.broker.route("a")
    job = qc.submit("t", routing_key="a", delay=60)
    qc.cancel(job)
    assert qc.redis.zscore(keys.due_scheduled, r.scheduled) is not None  # early, allowed
    assert qc.run(qc.broker.forget_route("a"))
    assert qc.redis.zscore(keys.due_scheduled, r.scheduled) is None


async def test_a_worker_promotes_and_reaps_on_every_backend(redis_url: str, prefix: str) -> None:
    """The worker's promoter and reaper, through the due indexes (or, on Cluster, key by
    key): a delayed job on the last of 40 keys runs, and a lease left by a worker that
    never came back is reaped and its job runs."""
    registry = Registry()
    ran: list[str] = []
    registry.register("t", lambda job: ran.append(job.id))
    keys = [f"k{i}" for i in range(40)]
    async with AsyncClient(redis_url, prefix=prefix) as client:
        orphan = await client.submit("t", routing_key="k17")
        [left] = await client.run(client.broker.fetch("k17", 1, 1_000))  # never acked
        assert left.id == orphan
        worker = Worker(
            registry, client=client, metrics_port=0, routing_keys=tuple(keys), concurrency=2
        )
        await worker.start()
        try:
            delayed = await client.submit("t", routing_key="k39", delay=0.3)
            assert (await client.wait_for_result(delayed, timeout=10)) is not None
            assert (await client.wait_for_result(orphan, timeout=10)) is not None
        finally:
            await worker.stop()
    assert sorted(ran) == sorted([orphan, delayed])

"""Single-hop wake-up (docs/architecture.md): a submit leases its job to a registered idle
worker and pushes it onto that worker's hand-off list, with fetch.lua's lease bookkeeping.

The broker's side runs on every backend; the worker's side (a worker killed before it
reads its hand-off, a stopping worker handing its hand-off back) with real workers."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from bananas import AsyncClient, Client, Job, JobStatus, Priority
from bananas.broker import Leased, new_fetch_id, parse_handoff
from bananas.config import Settings
from bananas.worker_runtime import Registry, build_worker
from tests.integration.conftest import Spawn
from tests.support.processes import ledger
from tests.support.servers import RedisServer
from tests.support.waiting import eventually, eventually_async

pytestmark = pytest.mark.timeout(60)

LEASE_MS = 10_000
IDLE_MS = 10_000


@pytest.fixture
def qc(redis_url: str, prefix: str) -> Iterator[Client]:
    with Client(redis_url, prefix=prefix) as c:
        yield c


def register(
    c: Client, fetch_id: str, *, route: str = "default", priorities: tuple[Priority, ...] = ()
) -> None:
    """An empty fetch that registers ``fetch_id`` as idle, as an idle worker's does."""
    fetched = c.run(
        c.broker.fetch_batch(
            route,
            10,
            LEASE_MS,
            fetch_id=fetch_id,
            idle_ms=IDLE_MS,
            **({"priorities": priorities} if priorities else {}),
        )
    )
    assert fetched.leased == [] and fetched.idle == fetch_id


def handed(c: Client, fetch_id: str, route: str = "default") -> list[Leased]:
    entries = c.redis.lrange(c.broker.route(route).handoff(fetch_id), 0, -1)
    return [parse_handoff(e) for e in entries]


def drain(c: Client, fetch_id: str, route: str = "default") -> list[Leased]:
    """What a worker's fetch with the registered id returns (and unregisters)."""
    op = c.broker.fetch_batch(route, 0, LEASE_MS, fetch_id=fetch_id, registered=True)
    return c.run(op).leased


def test_a_submit_leases_its_job_to_the_idle_registration(qc: Client) -> None:
    fid = new_fetch_id()
    register(qc, fid)
    job_id = qc.submit("j", {"x": "é"}, job_id="ü-\U0001f34c-1")
    r = qc.broker.route("default")
    [item] = handed(qc, fid)
    assert (item.id, item.attempt) == (job_id, 1)
    assert item.record == qc.redis.hget(r.jobs, job_id)
    assert qc.redis.llen(r.queue(Priority.NORMAL)) == 0 and qc.redis.llen(r.wake) == 0
    assert qc.redis.zscore(r.leases, job_id) is not None
    assert qc.redis.zcard(r.idle) == 0, "the registration is spent"
    job = qc.get_job(job_id)
    assert job is not None and job.status is JobStatus.PROCESSING
    # The fetch id's record has it too: a fetch with that id returns it (a lost pop reply).
    assert drain(qc, fid) == [item]
    # One job per registration: the next submit is queued and wakes a worker.
    other = qc.submit("j")
    assert qc.redis.lrange(r.queue(Priority.NORMAL), 0, -1) == [other]
    assert qc.redis.llen(r.wake) == 1
    assert qc.redis.hget(r.stats, "enqueued") == "2"


def test_a_fetch_short_of_its_count_registers_the_next_id(qc: Client) -> None:
    first = qc.submit("j")
    fid, nid = new_fetch_id(), new_fetch_id()

    def fetch() -> tuple[list[str], str]:
        op = qc.broker.fetch_batch(
            "default", 5, LEASE_MS, fetch_id=fid, idle_ms=IDLE_MS, next_id=nid
        )
        fetched = qc.run(op)
        return [i.id for i in fetched.leased], fetched.idle

    assert fetch() == ([first], nid), "it leased one of five: the next id is idle"
    second = qc.submit("j")
    assert [i.id for i in handed(qc, nid)] == [second]
    # The same fetch sent again (its reply was lost) returns both, and leaves nothing
    # registered: the worker takes the handed job from this reply.
    assert fetch() == ([first, second], "")
    assert qc.redis.zcard(qc.broker.route("default").idle) == 0


def test_an_expired_registration_is_never_handed_a_job(qc: Client) -> None:
    fid = new_fetch_id()
    register(qc, fid)
    r = qc.broker.route("default")
    [member] = qc.redis.zrange(r.idle, 0, -1)
    qc.redis.zadd(r.idle, {member: 0}, xx=True)  # its deadline passed (Redis' clock)
    job_id = qc.submit("j")
    assert handed(qc, fid) == []
    assert qc.redis.lrange(r.queue(Priority.NORMAL), 0, -1) == [job_id]
    assert qc.redis.zscore(r.leases, job_id) is None
    # The next registration sweeps the expired one away.
    register(qc, new_fetch_id(), priorities=(Priority.HIGH,))
    assert qc.redis.zcard(r.idle) == 1


def test_a_handed_job_never_overtakes_a_queued_one(qc: Client) -> None:
    r = qc.broker.route("default")
    high_only, every = new_fetch_id(), new_fetch_id()
    register(qc, high_only, priorities=(Priority.HIGH,))
    normal = qc.submit("j")  # no registration serves normal: queued
    assert qc.redis.lrange(r.queue(Priority.NORMAL), 0, -1) == [normal]
    high = qc.submit("j", priority="high")  # the high-only worker has nothing queued
    assert [i.id for i in handed(qc, high_only)] == [high]
    # A worker serving every priority, registered while normal waits (its fetch would
    # have taken it: register it by hand), is not handed a low job ahead of it.
    member = f"{every}:111:{LEASE_MS}"
    qc.redis.zadd(r.idle, {member: 2**50})
    low = qc.submit("j", priority="low")
    assert handed(qc, every) == []
    assert qc.redis.lrange(r.queue(Priority.LOW), 0, -1) == [low]


def test_nothing_is_handed_while_the_route_is_paused(qc: Client) -> None:
    fid = new_fetch_id()
    register(qc, fid)
    qc.pause("default", ["low"])
    job_id = qc.submit("j")
    assert handed(qc, fid) == []
    assert qc.redis.lrange(qc.broker.route("default").queue(Priority.NORMAL), 0, -1) == [job_id]


def test_a_job_handed_to_a_dead_worker_is_reaped_like_any_lease(qc: Client) -> None:
    fid = new_fetch_id()
    register(qc, fid)
    job_id = qc.submit("j")
    r = qc.broker.route("default")
    assert qc.redis.zadd(r.leases, {job_id: 0}, xx=True, ch=True) == 1  # lease expired
    assert qc.run(qc.broker.reap("default")).requeued == 1
    [again] = qc.run(qc.broker.fetch("default", 1, LEASE_MS))
    assert (again.id, again.attempt) == (job_id, 2), "the handed delivery counted"


def test_unregistering_removes_the_registration(qc: Client) -> None:
    fid = new_fetch_id()
    register(qc, fid)
    assert drain(qc, fid) == []
    assert qc.redis.zcard(qc.broker.route("default").idle) == 0
    job_id = qc.submit("j")
    assert handed(qc, fid) == []
    assert qc.redis.lrange(qc.broker.route("default").queue(Priority.NORMAL), 0, -1) == [job_id]


# -- real workers ---------------------------------------------------------------------------


async def test_an_idle_worker_gets_its_job_from_the_submit(redis_url: str, prefix: str) -> None:
    """On a single server the submit hands the job over; on Cluster (whose blocking pop
    can't span slots) the worker registers nothing and is woken as before."""
    registry = Registry()
    registry.register("j", lambda job: job.payload)
    settings = Settings(redis_url=redis_url, prefix=prefix, metrics_port=0)
    async with AsyncClient(redis_url, prefix=prefix) as client:
        worker = build_worker(registry, settings)
        await worker.start()
        try:
            r = client.broker.route("default")
            cluster = client.is_cluster
            assert worker.fetcher.single_hop is not cluster
            for n in range(3):
                if not cluster:
                    await eventually_async(
                        lambda: client.redis.zcard(r.idle), what="the worker registered idle"
                    )
                assert (await client.submit_and_wait("j", n, timeout=10)).result == n
            handed = int(await client.redis.hget(r.stats, "handed") or 0)
            assert handed == (0 if cluster else 3)
            if cluster:
                assert await client.redis.zcard(r.idle) == 0
        finally:
            await worker.stop()


def idle_registrations(c: Client, route: str = "default") -> int:
    return int(c.redis.zcard(c.broker.route(route).idle))


def test_a_job_handed_to_a_worker_killed_before_reading_it_is_recovered(
    spawn: Spawn, single_redis: RedisServer, prefix: str, tag: str
) -> None:
    with Client(single_redis.url, prefix=prefix) as c:
        victim = spawn(LEASE_DURATION="2s")
        eventually(lambda: idle_registrations(c) == 1, what="the worker registered idle")
        victim.signal(signal.SIGSTOP)  # it can no longer read its hand-off list
        job_id = c.submit("sleep", {"test": tag, "seconds": 0.01})
        r = c.broker.route("default")
        assert c.redis.zscore(r.leases, job_id) is not None, "handed to the stopped worker"
        victim.kill()
        spawn(LEASE_DURATION="2s")
        result = c.wait_for_result(job_id, timeout=20)
        assert result.is_success()
        starts = [row for row in ledger(single_redis, tag) if row[0] == "start"]
        assert len(starts) == 1 and starts[0][5] == "2", "it ran once, on its second delivery"


async def test_a_stopping_worker_hands_back_what_was_handed_to_it(
    single_redis: RedisServer, prefix: str
) -> None:
    registry = Registry()
    ran: list[str] = []

    @registry.handler("j")
    async def j(job: Job) -> None:
        ran.append(job.id)

    settings = Settings(
        redis_url=single_redis.url, prefix=prefix, metrics_port=0, enable_scheduler=False
    )
    async with AsyncClient(single_redis.url, prefix=prefix) as client:
        worker = build_worker(registry, settings)
        await worker.start()
        r = client.broker.route("default")
        assert worker.fetcher.single_hop
        await eventually_async(
            lambda: client.redis.zcard(r.idle), what="the worker registered idle"
        )
        # Stopping has begun: the fetcher reads no more hand-offs (what a stop that
        # cancels the blocking pop in flight leaves behind).
        worker.fetcher._stopping = True
        job_id = await client.submit("j")
        assert await client.redis.zscore(r.leases, job_id) is not None, "handed"
        await worker.stop()
        assert ran == []
        assert await client.redis.lrange(r.queue(Priority.NORMAL), 0, -1) == [job_id]
        assert await client.redis.zscore(r.leases, job_id) is None
        assert await client.redis.zcard(r.idle) == 0, "it unregistered"
        job = await client.get_job(job_id)
        assert job is not None and job.status is JobStatus.PENDING and job.attempts == 0

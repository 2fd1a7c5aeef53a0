"""The lease keeper: in-flight bookkeeping, the stale-delivery rule, drain, renew, release."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from bananas import AsyncClient, JobStatus
from bananas.broker import Leased
from bananas.worker_runtime.leases import Leases
from tests.support.servers import RedisServer

LEASE_MS = 30_000


@pytest.fixture
async def app(single_redis: RedisServer, prefix: str) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(single_redis.url, prefix=prefix) as client:
        yield client


def _leases(client: AsyncClient, concurrency: int = 2) -> Leases:
    return Leases(client, worker_id="w1", lease_ms=LEASE_MS, concurrency=concurrency)


async def _lease_one(client: AsyncClient) -> Leased:
    job_id = await client.submit("noop")
    (leased,) = await client.run(client.broker.fetch("default", 1, LEASE_MS))
    assert leased.id == job_id
    return leased


async def test_in_flight_bounds_what_may_be_fetched(app: AsyncClient) -> None:
    leases = _leases(app)
    a, b = Leased("a", "{}", 1), Leased("b", "{}", 1)
    leases.took("default", a)
    leases.took("default", b)
    assert (leases.in_flight, leases.free()) == (2, 0)
    freed = asyncio.ensure_future(leases.slot_freed())
    await asyncio.sleep(0)
    assert not freed.done()
    leases.finished(a)
    await asyncio.wait_for(freed, 1)
    assert (leases.in_flight, leases.free()) == (1, 1)


async def test_a_newer_delivery_keeps_its_lease_when_the_old_run_ends(app: AsyncClient) -> None:
    leases = _leases(app)
    old, new = Leased("j", "{}", 1), Leased("j", "{}", 2)
    leases.took("default", old)
    leases.took("default", new)  # reaped after a stall and fetched again by this worker
    leases.finished(old)
    assert leases.in_flight == 1
    assert leases.give_back([("default", new)]) == [("default", new)], "still held"
    assert leases.in_flight == 0


async def test_give_back_returns_only_what_is_still_held(app: AsyncClient) -> None:
    leases = _leases(app)
    a = Leased("a", "{}", 1)
    leases.took("default", a)
    leases.finished(a)
    leases.took("default", a)
    assert leases.give_back([("default", a)]) == [("default", a)]
    assert leases.give_back([]) == []


async def test_drain_waits_for_the_last_job_or_the_hurry(app: AsyncClient) -> None:
    leases = _leases(app)
    await asyncio.wait_for(leases.drain(60, None), 1)  # nothing in flight: at once
    a = Leased("a", "{}", 1)
    leases.took("default", a)
    drained = asyncio.ensure_future(leases.drain(60, None))
    await asyncio.sleep(0)
    assert not drained.done()
    leases.finished(a)
    await asyncio.wait_for(drained, 1)

    leases.took("default", a)
    hurry = asyncio.Event()
    hurried = asyncio.ensure_future(leases.drain(60, hurry))
    await asyncio.sleep(0)
    assert not hurried.done()
    hurry.set()
    await asyncio.wait_for(hurried, 1)
    assert leases.in_flight == 1, "the hurry ends the wait, not the job"


async def test_renew_is_fenced_by_the_lease_token(
    app: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    leases = _leases(app)
    leased = await _lease_one(app)
    leases.took("default", leased)
    with caplog.at_level(logging.WARNING, logger="bananas.worker_runtime.leases"):
        await app.run(leases.renew())
        assert not caplog.records
        stale = Leased(leased.id, leased.record, leased.attempt + 1)
        leases.took("default", stale)  # a token Redis never issued
        await app.run(leases.renew())
    assert any("lost the lease of 1 job" in r.getMessage() for r in caplog.records)


async def test_release_all_hands_held_jobs_straight_back(app: AsyncClient) -> None:
    leases = _leases(app)
    leased = await _lease_one(app)
    leases.took("default", leased)
    job = await app.get_job(leased.id)
    assert job is not None and job.status is JobStatus.PROCESSING
    await leases.release_all()
    job = await app.get_job(leased.id)
    assert job is not None and job.status is JobStatus.PENDING
    again = await app.run(app.broker.fetch("default", 1, LEASE_MS))
    assert [x.id for x in again] == [leased.id]

"""Workers and schedulers embedded in the test's own process (the seed's second pattern),
with an injectable clock where time matters."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bananas import AsyncClient, Client, Job, JobSpec, JobStatus, Priority, Schedule
from bananas.config import Settings
from bananas.worker_runtime import CronScheduler, Registry, Worker, build_worker, fetcher
from bananas.worker_runtime.cron import fire_id
from tests.support.clock import FakeClock
from tests.support.servers import RedisServer
from tests.support.waiting import eventually_async

pytestmark = pytest.mark.timeout(60)


async def test_embedded_worker_shares_the_app_client(
    single_redis: RedisServer, prefix: str
) -> None:
    registry = Registry()
    seen: list[str] = []

    @registry.handler("greet")
    async def greet(job: Job) -> str:
        seen.append(job.id)
        return f"hello {job.payload['name']}"

    async with AsyncClient(single_redis.url, prefix=prefix) as app_client:
        worker = Worker(registry, client=app_client, metrics_port=0)
        await worker.start()
        result = await app_client.submit_and_wait("greet", {"name": "ada"}, timeout=5)
        await worker.stop()
        assert result.result == "hello ada" and len(seen) == 1
        assert await app_client.ping(), "stopping the worker must not close the app's client"


@pytest.mark.parametrize("routes", [1, 20])
async def test_an_idle_fetcher_finds_a_job_whose_wake_token_was_lost(
    single_redis: RedisServer, prefix: str, routes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The idle fetcher's safety net (a wake token lost with a worker that died between
    popping it and fetching): after quiet blocks, the paced quiet sweep (20 keys: two
    hop) or the renewal of the idle registration (1 key: single hop) fetches a job that
    no token announces. The fetcher's timings are shortened."""
    monkeypatch.setattr(fetcher, "IDLE_BLOCK_SECONDS", 0.1)
    monkeypatch.setattr(fetcher, "SWEEP_EVERY", 3)
    monkeypatch.setattr(fetcher, "IDLE_REGISTRATION_MS", 1_000)
    monkeypatch.setattr(fetcher, "IDLE_RENEW_MARGIN", 0.5)
    keys = tuple(f"k{i}" for i in range(routes))
    registry = Registry()
    registry.register("t", lambda job: job.id)
    settings = Settings(
        redis_url=single_redis.url, prefix=prefix, metrics_port=0, routing_keys=keys
    )
    async with AsyncClient(single_redis.url, prefix=prefix) as client:
        r = client.broker.route("k0")
        job_id = await client.submit("t", routing_key="k0")
        # the job stays stored but leaves its queue, and its token goes
        await client.redis.lrem(r.queue(Priority.NORMAL), 0, job_id)
        await client.redis.delete(r.wake)
        worker = build_worker(registry, settings)
        await worker.start()
        try:
            assert worker.fetcher.single_hop is (routes == 1)

            async def idle() -> bool:
                if routes == 1:
                    return bool(await client.redis.zcard(r.idle))
                clients = await client.redis.client_list()
                return any(c.get("cmd") == "blpop" for c in clients)

            await eventually_async(idle, what="the fetcher blocked idle")
            await client.redis.rpush(r.queue(Priority.NORMAL), job_id)  # no token
            result = await client.wait_for_result(job_id, timeout=10)
            assert result is not None and result.result == job_id
        finally:
            await worker.stop()


def test_embedded_worker_in_a_sync_app(single_redis: RedisServer, prefix: str) -> None:
    registry = Registry()
    registry.register("double", lambda job: job.payload * 2)
    worker = Worker(registry, redis_url=single_redis.url, prefix=prefix, metrics_port=0)
    worker.start_in_thread()
    try:
        with Client(single_redis.url, prefix=prefix) as client:
            assert client.submit_and_wait("double", 21, timeout=5).result == 42
    finally:
        worker.stop_in_thread()


async def test_retry_backoff_follows_redis_clock(single_redis: RedisServer, prefix: str) -> None:
    clock = FakeClock()
    registry = Registry()
    calls: list[int] = []

    @registry.handler("flaky")
    async def flaky(job: Job) -> str:
        calls.append(job.attempts)
        if job.attempts < 3:
            raise RuntimeError("not yet")
        return "ok"

    async with AsyncClient(single_redis.url, prefix=prefix, clock=clock) as client:
        worker = build_worker(
            registry,
            Settings(
                redis_url=single_redis.url,
                prefix=prefix,
                metrics_port=0,
                enable_scheduler=False,
                scheduler_interval=0.05,
            ),
            clock=clock,
        )
        await worker.start()
        job_id = await client.submit("flaky")
        for attempt, full in ((1, 2.0), (2, 4.0)):
            await eventually_async(lambda a=attempt: _status_after(client, job_id, a))
            job = await client.get_job(job_id)
            assert job is not None and job.status is JobStatus.SCHEDULED
            assert job.error == "RuntimeError: not yet"
            scheduled = client.broker.route("default").scheduled
            due = await client.redis.zscore(scheduled, job_id)
            seconds, micros = await client.redis.time()
            wait = due / 1000 - (int(seconds) + int(micros) / 1e6)
            assert full * 0.75 - 0.5 <= wait <= full, "backoff is 2**attempt s (Redis' clock)"
            # Not a synchronisation: an observation window in which a premature retry
            # would run (the backoff has not passed, so nothing may happen).
            await asyncio.sleep(0.2)
            assert len(calls) == attempt, "a retry ran before its backoff passed"
            # The backoff counts on Redis' clock, which a test cannot move: make it due.
            await client.redis.zadd(scheduled, {job_id: 0}, xx=True)
        result = await client.wait_for_result(job_id, timeout=5)
        assert result.result == "ok" and calls == [1, 2, 3]
        await worker.stop()


async def _status_after(client: AsyncClient, job_id: str, attempt: int) -> bool:
    job = await client.get_job(job_id)
    return job is not None and job.attempts == attempt and job.status is JobStatus.SCHEDULED


async def test_job_specialized_worker_never_loses_other_jobs(
    single_redis: RedisServer, prefix: str
) -> None:
    registry = Registry()
    registry.register("email", lambda job: "sent")
    registry.register("sms", lambda job: "texted")
    async with AsyncClient(single_redis.url, prefix=prefix) as client:
        only_email = Worker(
            registry, client=client, mode="job-specialized", job_types=("email",), metrics_port=0
        )
        await only_email.start()
        sms = await client.submit("sms", max_retries=5)
        assert (await client.submit_and_wait("email", timeout=5)).result == "sent"
        await eventually_async(lambda: _has_error(client, sms))
        job = await client.get_job(sms)
        assert job is not None and job.status is JobStatus.SCHEDULED, "deferred, not dropped"
        await only_email.stop()
        general = Worker(registry, client=client, metrics_port=0)
        await general.start()
        # Make its retry due now instead of waiting out the backoff, then promote it.
        await client.redis.zadd(client.broker.route("default").scheduled, {sms: 0}, xx=True)
        await client.run(client.broker.promote("default"))
        assert (await client.wait_for_result(sms, timeout=5)).result == "texted"
        await general.stop()


async def _has_error(client: AsyncClient, job_id: str) -> bool:
    job = await client.get_job(job_id)
    return job is not None and job.error.startswith("no handler for sms")


async def test_low_priority_is_not_starved(single_redis: RedisServer, prefix: str) -> None:
    registry = Registry()
    order: list[str] = []

    @registry.handler("work")
    async def work(job: Job) -> None:
        order.append(job.priority.value)

    async with AsyncClient(single_redis.url, prefix=prefix) as client:
        await client.submit_many([JobSpec("work", priority="high") for _ in range(400)])
        await client.submit("work", priority="low")
        worker = Worker(registry, client=client, concurrency=1, metrics_port=0)
        await worker.start()
        await eventually_async(lambda: _drained(client))
        await worker.stop()
    assert "low" in order[: 2 * 16 + 1], "with one slot a low job waits at most two fair turns"


async def _drained(client: AsyncClient) -> bool:
    stats = await client.queue_stats()
    return stats.queued == 0 and stats.in_flight == 0


class AlwaysLeader:
    """A test elector that always leads: two of them race like a split brain would."""

    def __init__(self, identity: str) -> None:
        self.identity = identity
        self.lease_duration = 10.0

    async def acquire_or_renew(self) -> int | None:
        return 1

    async def release(self) -> None:
        return None

    async def close(self) -> None:
        return None


async def test_racing_schedulers_fire_each_slot_once(
    single_redis: RedisServer, prefix: str
) -> None:
    clock = FakeClock()
    start = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)
    clock.offset = start.timestamp() - datetime.now(UTC).timestamp()
    schedule = Schedule(id="every-minute", cron="* * * * *", job="tick")
    async with AsyncClient(single_redis.url, prefix=prefix, clock=clock) as client:
        a = CronScheduler(client, AlwaysLeader("a"), schedules=[schedule], clock=clock)
        b = CronScheduler(client, AlwaysLeader("b"), schedules=[schedule], clock=clock)
        await asyncio.gather(a.step(), b.step())  # first sight: nothing owed
        for _ in range(5):
            clock.advance(60)
            await asyncio.gather(a.step(), b.step(), a.step())
        stats = await client.queue_stats()
        assert stats.queued == 5
        status = await client.schedule_status("every-minute")
        assert status is not None and status.last_job_id == fire_id(
            "every-minute", datetime(2026, 6, 1, 12, 5, tzinfo=UTC)
        )
        assert status.next_schedule_time == datetime(2026, 6, 1, 12, 6, tzinfo=UTC)


async def test_cron_forbid_skips_while_the_previous_fire_lives(
    single_redis: RedisServer, prefix: str
) -> None:
    clock = FakeClock()
    schedule = Schedule(id="forbid", cron="* * * * *", job="tick", concurrency_policy="Forbid")
    async with AsyncClient(single_redis.url, prefix=prefix, clock=clock) as client:
        await client.register_schedule(schedule)
        cron = CronScheduler(client, AlwaysLeader("a"), clock=clock)
        await cron.step()
        for _ in range(3):
            clock.advance(60)
            await cron.step()
        status = await client.schedule_status("forbid")
        assert status is not None and status.run_count == 1 and status.skipped_count == 2
        assert (await client.queue_stats()).queued == 1


async def test_cron_status_follows_the_fired_job(single_redis: RedisServer, prefix: str) -> None:
    clock = FakeClock()
    registry = Registry()
    registry.register("tick", lambda job: "tock")
    async with AsyncClient(single_redis.url, prefix=prefix, clock=clock) as client:
        await client.register_schedule(Schedule(id="s", cron="* * * * *", job="tick"))
        cron = CronScheduler(client, AlwaysLeader("a"), clock=clock)
        await cron.step()
        clock.advance(60)
        await cron.step()
        worker = Worker(registry, client=client, metrics_port=0)
        await worker.start()
        status = await client.schedule_status("s")
        assert status is not None
        await client.wait_for_result(status.last_job_id, timeout=5)
        await cron.step()
        status = await client.schedule_status("s")
        assert status is not None and status.last_successful_time is not None
        assert status.last_successful_time - datetime.now(UTC) < timedelta(seconds=5)
        await worker.stop()


async def test_a_big_payload_is_not_copied_next_to_its_result(
    single_redis: RedisServer, prefix: str
) -> None:
    registry = Registry()
    registry.register("size", lambda job: len(job.payload["blob"]))
    async with AsyncClient(single_redis.url, prefix=prefix) as client:
        worker = Worker(registry, client=client, metrics_port=0)
        await worker.start()
        try:
            big = await client.submit_and_wait("size", {"blob": "x" * 200_000}, timeout=10)
            small = await client.submit_and_wait("size", {"blob": "y"}, timeout=10)
        finally:
            await worker.stop()
        assert (big.result, small.result) == (200_000, 1)
        route = client.broker.route("default")
        kept = await client.redis.hget(route.result(big.job_id), "job")
        assert kept is not None and len(kept) < 2_000, "a stand-in, not a 200 KB copy"
        done = await client.get_job(big.job_id)
        assert done is not None and done.payload is None and done.name == "size"
        done_small = await client.get_job(small.job_id)
        assert done_small is not None and done_small.payload == {"blob": "y"}

"""The connections of one AsyncClient: result waiters share a few (``bananas.waits``), and
closing the client closes every one, even one a running call reconnected."""

from __future__ import annotations

import asyncio
from typing import Any

from bananas import AsyncClient, Job
from bananas.ops import Op, command
from bananas.transport import MAX_IDLE_LANES, MAX_LANES
from bananas.waits import KEYS_PER_HUB
from bananas.worker_runtime import Registry, Worker
from tests.support.servers import RedisServer, blocked_clients, connected_clients
from tests.support.waiting import eventually_async

WAITERS = 600


async def test_many_waiters_share_hubs_and_all_get_their_result(
    single_redis: RedisServer, prefix: str
) -> None:
    registry = Registry()

    @registry.handler("double")
    async def double(job: Job) -> int:
        return int(job.payload) * 2

    async with AsyncClient(single_redis.url, prefix=prefix) as client:
        worker = Worker(registry, redis_url=single_redis.url, prefix=prefix, metrics_port=0)
        await worker.start()
        try:
            results = await asyncio.gather(
                *(client.submit_and_wait("double", i, timeout=30) for i in range(WAITERS))
            )
        finally:
            await worker.stop()
        assert [r.result for r in results] == [2 * i for i in range(WAITERS)]
        assert client._waits is not None
        assert client._waits.connections <= -(-WAITERS // KEYS_PER_HUB)
        assert client._lanes is not None and len(client._lanes._all) <= MAX_LANES


async def test_a_waiter_arriving_while_the_hub_blocks_is_woken_at_once(
    single_redis: RedisServer, prefix: str
) -> None:
    async with AsyncClient(single_redis.url, prefix=prefix) as client:
        first = await client.submit("never_runs")
        second = await client.submit("later")
        blocked = blocked_clients(single_redis.url)
        slow = asyncio.ensure_future(client.wait_for_result(first, timeout=10))
        await eventually_async(lambda: _more_blocked(single_redis.url, blocked))
        quick = asyncio.ensure_future(client.wait_for_result(second, timeout=10))
        route = client.broker.route("default")
        assert client._waits is not None
        hubs = client._waits._hubs

        async def registered() -> bool:
            return any(route.notify(second) in hub.waiting for hub in hubs)

        await eventually_async(registered)
        # Finish the second job by hand: store a result and push its notify token.
        await client.redis.hset(route.result(second), mapping={"result": _result(second)})
        await client.redis.rpush(route.notify(second), 1)
        done = await asyncio.wait_for(quick, 1.5)  # well inside the hub's 2 s block
        assert done.is_success()
        slow.cancel()
        await asyncio.gather(slow, return_exceptions=True)


async def test_a_lane_reconnected_by_a_call_running_at_close_is_closed_by_the_next_close(
    single_redis: RedisServer, prefix: str
) -> None:
    """The operator closes its clients while a handler may still be mid-call; the call's
    lane reconnects, and the client's next close must reach it (no socket left open)."""

    def slow_pop() -> Op[Any]:
        reply = yield command("BLPOP", f"{prefix}:nothing", 0.5)
        return reply

    url = single_redis.url
    before = connected_clients(url)
    blocked = blocked_clients(url)
    client = AsyncClient(url, prefix=prefix)
    call = asyncio.ensure_future(client.run(slow_pop()))
    await eventually_async(lambda: _more_blocked(url, blocked))
    await client.close()  # drops the lane under the BLPOP: the call retries on a new socket
    assert await call is None
    await client.close()
    await eventually_async(lambda: _connections_back_to(url, before))


async def _connections_back_to(url: str, count: int) -> bool:
    return connected_clients(url) == count


async def _more_blocked(url: str, before: int) -> bool:
    return blocked_clients(url) > before


def _result(job_id: str) -> str:
    return (
        f'{{"job_id":"{job_id}","status":"completed","result":1,"error":"",'
        '"completed_at":"2026-01-01T00:00:00Z","duration":0.0}'
    )


async def test_a_burst_leaves_only_a_few_connections_open(
    single_redis: RedisServer, prefix: str
) -> None:
    """40 calls at once open up to 40 lanes; afterwards at most MAX_IDLE_LANES stay."""
    assert MAX_IDLE_LANES < 40  # else this burst would prove nothing
    async with AsyncClient(single_redis.url, prefix=prefix) as client:
        await client.get_job("warm-up")
        before = connected_clients(single_redis.url)
        jobs = await asyncio.gather(*(client.get_job(f"nope-{i}") for i in range(40)))
        assert jobs == [None] * 40
        assert client._lanes is not None
        assert len(client._lanes._idle) <= MAX_IDLE_LANES
        assert len(client._lanes._all) == len(client._lanes._idle)
        assert connected_clients(single_redis.url) <= before + MAX_IDLE_LANES

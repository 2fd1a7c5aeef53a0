"""The operator's Redis clients: one per (URL, prefix), never closed while leased."""

from __future__ import annotations

from bananas.operator.redis_clients import RedisClients


async def test_one_client_per_url_and_prefix() -> None:
    clients = RedisClients(limit=8)
    try:
        async with clients.lease("redis://a:6379/0", "bananas") as first:
            async with clients.lease("redis://a:6379/0", "bananas") as again:
                assert again is first
            async with clients.lease("redis://a:6379/0", "team-b") as other:
                assert other is not first
                assert other.core.broker.keys.prefix == "team-b"
    finally:
        await clients.close()


async def test_a_client_in_use_is_never_evicted() -> None:
    """More URLs in use at once than the limit: all stay open until released."""
    clients = RedisClients(limit=1)
    try:
        busy = await clients.acquire("redis://busy:6379/0", "bananas")
        for n in range(5):  # other pools come and go while "busy" is mid-poll
            async with clients.lease(f"redis://other-{n}:6379/0", "bananas"):
                pass
        assert len(clients) == 1  # the idle ones were closed, the leased one kept
        assert await clients.acquire("redis://busy:6379/0", "bananas") is busy
        await clients.release(busy)
        await clients.release(busy)
        async with clients.lease("redis://next:6379/0", "bananas"):
            assert len(clients) == 1  # now "busy" was idle, least recently used, and closed
        fresh = await clients.acquire("redis://busy:6379/0", "bananas")
        assert fresh is not busy
        await clients.release(fresh)
    finally:
        await clients.close()


async def test_a_round_still_running_at_close_does_not_leak() -> None:
    clients = RedisClients(limit=4)
    client = await clients.acquire("redis://late:6379/0", "bananas")
    await clients.close()  # the operator stops while a poll holds the client
    await clients.release(client)  # closed again: whatever it opened meanwhile goes too
    late = await clients.acquire("redis://late:6379/0", "bananas")
    assert late is not client and len(clients) == 0  # its own, not cached
    await clients.release(late)


async def test_a_client_nobody_used_for_long_is_closed_within_the_limit() -> None:
    now = [1000.0]
    clients = RedisClients(limit=8, idle_seconds=600, clock=lambda: now[0])
    try:
        async with clients.lease("redis://gone:6379/0", "bananas") as gone:
            pass
        now[0] += 300
        async with clients.lease("redis://kept:6379/0", "bananas"):
            pass
        assert len(clients) == 2  # both recent enough
        now[0] += 301  # "gone" unused for 601 s, "kept" for 301 s
        async with clients.lease("redis://kept:6379/0", "bananas") as kept:
            assert len(clients) == 1
        again = await clients.acquire("redis://gone:6379/0", "bananas")
        assert again is not gone and again is not kept  # a fresh client
        await clients.release(again)
    finally:
        await clients.close()

"""The worker's fast lane reads replies off the stream with its own hiredis reader: it
must answer, fail and reconnect exactly as redis-py would (real Redis)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest
import redis
import redis.asyncio as aioredis

from bananas.ops import Call
from bananas.transport import FastLane
from tests.support.servers import RedisServer


def _lane(url: str, **options: object) -> tuple[aioredis.Redis, FastLane]:
    client = aioredis.Redis.from_url(url, **options)  # type: ignore[arg-type]
    return client, FastLane(client)


def test_replies_errors_and_a_reconnect(single_redis: RedisServer) -> None:
    async def run() -> None:
        client, lane = _lane(single_redis.url, decode_responses=True)
        try:
            await lane.call(("DEL", "lane:l", "lane:s"))
            assert await lane.call(("RPUSH", "lane:l", "a", "é")) == 2
            assert await lane.call(("LRANGE", "lane:l", 0, -1)) == ["a", "é"]
            assert await lane.call(("GET", "lane:none")) is None
            big = "x" * 300_000  # a reply longer than one read
            await lane.call(("SET", "lane:s", big))
            assert await lane.call(("GET", "lane:s")) == big
            with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
                await lane.call(("GET", "lane:l"))
            with pytest.raises(redis.exceptions.BusyLoadingError):  # as after a restart
                await lane.call(("EVAL", "return redis.error_reply('LOADING busy')", 0))
            with pytest.raises(redis.exceptions.NoScriptError):
                await lane.call(("EVALSHA", "0" * 40, 0))
            # NOSCRIPT is answered by sending the script itself
            script = cast(Any, SimpleNamespace(source="return 7"))
            reply = await lane.execute(Call(("EVALSHA", "0" * 40, 0), script))
            assert reply == 7
            # the server drops the connection: the next call reconnects once
            own = await lane.call(("CLIENT", "ID"))
            await client.client_kill_filter(_id=own)
            assert await lane.call(("PING",)) in (True, "PONG")
            assert await lane.call(("CLIENT", "ID")) != own
            assert await lane.call(("LLEN", "lane:l")) == 2  # and the stream is in step
        finally:
            await lane.close()
            await client.aclose()

    asyncio.run(run())


def test_a_reply_that_does_not_come_times_out(single_redis: RedisServer) -> None:
    async def run() -> None:
        client, lane = _lane(single_redis.url, socket_timeout=0.3)
        try:
            with pytest.raises(redis.TimeoutError):
                await lane.call(("BLPOP", "lane:never", 2))
            assert await lane.call(("ECHO", "after")) == b"after"  # a fresh connection
        finally:
            await lane.close()
            await client.aclose()

    asyncio.run(run())

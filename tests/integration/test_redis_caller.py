"""The one retrying Redis caller of the runtime (``RedisCaller``)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bananas import AsyncClient
from bananas.ops import Op
from bananas.worker_runtime.retry import RedisCaller
from tests.support.ports import free_port
from tests.support.servers import RedisServer


async def test_call_returns_what_redis_answers(single_redis: RedisServer, prefix: str) -> None:
    async with AsyncClient(single_redis.url, prefix=prefix) as client:
        redis = RedisCaller(client)
        assert not redis.ok
        assert await redis.call(client.broker.routes) == []
        assert redis.ok


async def test_attempt_reports_a_failure_as_none(
    prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with AsyncClient(f"redis://127.0.0.1:{free_port()}", prefix=prefix) as client:
        redis = RedisCaller(client)
        with caplog.at_level(logging.WARNING, logger="bananas.worker_runtime.retry"):
            assert await redis.attempt(client.broker.routes(), "listing routes") is None
        assert not redis.ok
        assert any("listing routes failed" in r.getMessage() for r in caplog.records)


async def test_call_keeps_trying_until_cancelled(
    prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with AsyncClient(f"redis://127.0.0.1:{free_port()}", prefix=prefix) as client:
        redis = RedisCaller(client, pause=0.01, max_pause=0.02)
        built = 0

        def make() -> Op[list[str]]:
            nonlocal built
            built += 1
            return client.broker.routes()

        with caplog.at_level(logging.ERROR, logger="bananas.worker_runtime.retry"):
            task = asyncio.ensure_future(redis.call(make))
            async with asyncio.timeout(10):
                while built < 3:  # each try rebuilds the operation
                    await asyncio.sleep(0.01)
            assert not task.done() and not redis.ok
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        failures = [r for r in caplog.records if "Redis call failed" in r.getMessage()]
        assert len(failures) == 1, "one error per outage, not one per try"

"""The cron leader's offset to Redis' clock, measured against a real server."""

from __future__ import annotations

import logging
import time

import pytest

from bananas import AsyncClient
from bananas.worker_runtime.clocksync import RedisClock
from bananas.worker_runtime.metrics import Metrics
from tests.support.servers import RedisServer


async def test_an_exact_host_measures_about_no_offset(single_redis: RedisServer) -> None:
    metrics = Metrics()
    async with AsyncClient(single_redis.url) as client:
        clock = RedisClock(client, gauge=metrics.clock_offset)
        offset = await clock.measure()
    assert abs(offset) < 0.5
    assert abs(clock.now() - time.time()) < 0.5
    assert metrics.clock_offset._value.get() == offset


async def test_a_skewed_clock_is_corrected_and_warned_about_once(
    single_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with AsyncClient(single_redis.url) as client:
        # The applied clock runs 20 s fast; the offset is measured on the real clock,
        # so a fake test clock keeps its own time. A host whose real clock is off has
        # it corrected: simulate by pretending the real clock is the fast one.
        clock = RedisClock(client, clock=lambda: time.time() + 20)
        await clock.measure()
        assert abs(clock.now() - (time.time() + 20)) < 0.5
        clock.offset = -20.0
        with caplog.at_level(logging.WARNING, "bananas.worker_runtime.clocksync"):
            clock._report()
            clock._report()
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "+20.000s off Redis' clock" in warnings[0]

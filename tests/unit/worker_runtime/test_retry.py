"""The retry backoff: doubling, jitter, a cap."""

from __future__ import annotations

import random

import pytest

from bananas.worker_runtime.retry import backoff_delay


def test_backoff_doubles_with_jitter_and_a_cap() -> None:
    rng = random.Random(7)
    for attempt, full in [(1, 2), (2, 4), (3, 8), (10, 1024)]:
        delay = backoff_delay(attempt, rng=rng)
        assert full * 0.75 <= delay <= full
    assert backoff_delay(40, cap=60, rng=rng) <= 60
    assert backoff_delay(10_000, rng=rng) <= 3600


def test_an_outage_is_reported_once_with_reminders_that_back_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    from bananas.worker_runtime.retry import Outage

    now = [100.0]
    outage = Outage(clock=lambda: now[0])
    error = ConnectionError("refused")
    with caplog.at_level(logging.INFO, logger="bananas.worker_runtime.retry"):
        for _ in range(60 * 10):  # ten callers a second for a minute
            outage.failed("Redis call", error)
            now[0] += 0.1
        outage.succeeded()
        outage.succeeded()  # another caller on the same client: nothing more to say
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert lines[0] == ("ERROR", "Redis call failed, retrying with backoff: refused")
    reminders = [m for level, m in lines if level == "WARNING"]
    assert [m.split(" after ")[1].split("s:")[0] for m in reminders] == ["10", "30"]
    assert lines[-1] == ("INFO", "Redis is reachable again after 60.0s")
    assert len(lines) == 4

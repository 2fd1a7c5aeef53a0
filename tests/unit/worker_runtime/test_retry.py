"""The retry backoff: doubling, jitter, a cap."""

from __future__ import annotations

import random

from bananas.worker_runtime.retry import backoff_delay


def test_backoff_doubles_with_jitter_and_a_cap() -> None:
    rng = random.Random(7)
    for attempt, full in [(1, 2), (2, 4), (3, 8), (10, 1024)]:
        delay = backoff_delay(attempt, rng=rng)
        assert full * 0.75 <= delay <= full
    assert backoff_delay(40, cap=60, rng=rng) <= 60
    assert backoff_delay(10_000, rng=rng) <= 3600

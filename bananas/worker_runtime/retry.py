"""Retry backoff: exponential, capped, with jitter.

The seed waited ``2 ** attempts`` seconds; that stays the shape. Jitter spreads the
retries of jobs that failed together (a dependency outage) so they do not return
together: the delay is drawn uniformly from ``[(1 - jitter) * d, d]``.
"""

from __future__ import annotations

import random

from bananas.models import DEFAULT_BACKOFF_CAP

#: Base of the exponential (seconds for the first retry is base * 2).
BACKOFF_BASE = 1.0
#: Fraction of the delay that is randomised.
BACKOFF_JITTER = 0.25


def backoff_delay(
    attempt: int,
    *,
    cap: float = DEFAULT_BACKOFF_CAP,
    base: float = BACKOFF_BASE,
    jitter: float = BACKOFF_JITTER,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retrying after failed attempt number ``attempt`` (1-based)."""
    delay = min(cap, base * 2.0 ** min(max(attempt, 1), 62))
    spread = (rng or random).uniform(1.0 - jitter, 1.0)
    return delay * spread

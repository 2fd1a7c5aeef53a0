"""Percentiles and summaries (standard library only: adapters import it too).

Percentiles use the nearest-rank method on the sorted sample: p99 of 200
values is the 198th smallest. With the sample sizes used here (200 and up)
that is within one sample of any interpolating definition.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], pct: float) -> float:
    """Return the nearest-rank ``pct`` percentile; raises ``ValueError`` if empty."""
    if not values:
        raise ValueError("percentile of an empty sample")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summarize_ms(seconds: Sequence[float]) -> dict[str, float]:
    """Summarize durations given in seconds as milliseconds.

    Returns ``n``, ``min``, ``p50``, ``p95``, ``p99``, ``max`` and ``mean``
    (all but ``n`` in ms); an empty sample gives ``{"n": 0}``.
    """
    if not seconds:
        return {"n": 0}
    ordered = sorted(seconds)
    return {
        "n": len(ordered),
        "min": ordered[0] * 1e3,
        "p50": percentile(ordered, 50) * 1e3,
        "p95": percentile(ordered, 95) * 1e3,
        "p99": percentile(ordered, 99) * 1e3,
        "max": ordered[-1] * 1e3,
        "mean": sum(ordered) / len(ordered) * 1e3,
    }

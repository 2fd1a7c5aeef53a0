"""Queue-wait and run-time histograms per routing key, kept in Redis for the dashboard.

Workers count every finished attempt's run time and every first attempt's queue wait
(enqueue, or due time, to start) in a small fixed histogram of log-spaced buckets, in
the same script call that acks or fails the batch (``ack.lua``, ``fail.lua``): one
``HINCRBY`` per distinct (kind, bucket) of the batch and resolution, not per job. Two
resolutions are kept, each a hash per routing key:

- per minute, in one hash per hour (``RouteKeys.timing_minutes``), kept
  :data:`MINUTE_TTL_MS`: the hour view;
- per hour, in one hash per day (``RouteKeys.timing_hours``), kept :data:`HOUR_TTL_MS`:
  the day and week views.

Percentiles are computed when read, from the summed buckets, so points and routing keys
add up exactly (a percentile of percentiles would not). A bucket spans a factor of
sqrt(2); the value reported for a quantile is interpolated geometrically inside its
bucket, so it is within about 19% of the true one.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping

#: Lower edge of bucket 1, in seconds; bucket 0 holds everything below it.
FIRST_EDGE = 1e-4
#: Buckets per doubling of the value.
PER_OCTAVE = 2
#: The highest bucket (everything from ``edge(LAST_BUCKET)``, about 30 hours, up).
LAST_BUCKET = 61
#: Field prefixes of the two kinds: w queue wait (first attempts), r run time.
KINDS = {"w": "wait", "r": "run"}
#: Retention of the per-minute histograms (the hour view, and an hour of margin).
MINUTE_TTL_MS = 3 * 3600 * 1000
#: Retention of the per-hour histograms (the week view, and a day of margin).
HOUR_TTL_MS = 8 * 24 * 3600 * 1000
#: The quantiles the dashboard shows.
QUANTILES = (0.5, 0.95, 0.99)


def bucket(seconds: float) -> int:
    """The bucket of a duration: 0 below :data:`FIRST_EDGE`, then one per sqrt(2)."""
    return bisect_right(_EDGES, seconds)


def edge(index: int) -> float:
    """The lower edge of bucket ``index`` in seconds (0 for bucket 0)."""
    if index <= 0:
        return 0.0
    return FIRST_EDGE * 2 ** ((index - 1) / PER_OCTAVE)


#: The lower edges of buckets 1 to :data:`LAST_BUCKET`: a duration's bucket is how many
#: of them it reaches.
_EDGES = tuple(edge(i) for i in range(1, LAST_BUCKET + 1))


def tally(durations: Iterable[tuple[float, float | None]]) -> str:
    """The script spec (``"<field> <count> ..."``, '' for none) of a batch's
    (run time, queue wait or None) pairs: ``r<bucket>`` and ``w<bucket>`` fields."""
    runs: dict[int, int] = {}
    waits: dict[int, int] = {}
    find, edges = bisect_right, _EDGES
    for run, wait in durations:  # the hot path: one C call per duration
        b = find(edges, run)
        runs[b] = runs.get(b, 0) + 1
        if wait is not None:
            b = find(edges, wait)
            waits[b] = waits.get(b, 0) + 1
    return " ".join(
        [f"r{b} {n}" for b, n in runs.items()] + [f"w{b} {n}" for b, n in waits.items()]
    )


Histogram = dict[int, int]


def merge(into: Histogram, other: Mapping[int, int]) -> None:
    """Add ``other``'s bucket counts to ``into``."""
    for b, n in other.items():
        into[b] = into.get(b, 0) + n


def quantile(hist: Mapping[int, int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a histogram in seconds; None when it is empty."""
    total = sum(hist.values())
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for b in sorted(hist):
        n = hist[b]
        if n <= 0:
            continue
        if seen + n >= rank:
            low = edge(b)
            if b == 0:
                return FIRST_EDGE * (rank - seen) / n
            high = edge(b + 1)
            return float(low * (high / low) ** ((rank - seen) / n))
        seen += n
    return edge(max(hist))


def parse_fields(
    fields: Mapping[str, str], first: int, last: int
) -> dict[int, dict[str, Histogram]]:
    """Fields ``"<point>:<kind><bucket>"`` of a timing hash: point -> kind -> histogram,
    only points from ``first`` to ``last`` (both included); unknown fields are skipped."""
    out: dict[int, dict[str, Histogram]] = {}
    for name, value in fields.items():
        point_text, _, rest = name.partition(":")
        kind = KINDS.get(rest[:1])
        if kind is None or not point_text.isdigit() or not rest[1:].isdigit():
            continue
        point = int(point_text)
        if first <= point <= last:
            hist = out.setdefault(point, {}).setdefault(kind, {})
            b = int(rest[1:])
            hist[b] = hist.get(b, 0) + int(value)
    return out

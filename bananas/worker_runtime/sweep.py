"""The slow sweep: a safety net under the due indexes, at a cost that does not grow with
the number of routing keys.

The reaper and the promoter learn which routes have something due from one key, the
route's entry in a due index (``KeySpace.due_leases`` / ``due_scheduled``, kept by the
scripts: see the prelude). A route whose entry is missing although its set is not empty
would be skipped for ever; that happens only when something wrote the set without the
index (a worker or client of a version before the index, during a rolling upgrade, or a
hand edit). So each of them also looks at its routes in turn, one at a time, whether or
not the index names them, and the look settles the route's entry: every route at least
every :data:`SWEEP_PERIOD` seconds while there are few, and never more than
:data:`SWEEP_RATE` looks a second however many there are (500 routes: each every 2,000 s).
"""

from __future__ import annotations

from collections.abc import Sequence

#: Seconds in which the slow sweep looks at every route once, when the rate allows.
SWEEP_PERIOD = 60.0
#: Most looks a second the slow sweep takes, over all the routes it serves (each look is
#: one script call of about four commands).
SWEEP_RATE = 0.25


class SlowSweep:
    """Picks the routes to look at now, one after the other, at a bounded rate.

    Pure: the caller passes its clock's reading (``now``, seconds) to :meth:`take`.
    """

    def __init__(
        self, *, period: float = SWEEP_PERIOD, rate: float = SWEEP_RATE, gap: float = 2.0
    ) -> None:
        self.period = period
        self.rate = rate
        #: The longest the caller goes between two takes, in seconds: looks saved up are
        #: capped to what that allows (so an outage does not end in a burst).
        self.gap = gap
        self._cursor = 0
        self._credit = 0.0
        self._last: float | None = None

    def take(self, routes: Sequence[str], now: float) -> list[str]:
        """The routes due for their slow look at ``now`` (often none, at most a second's
        worth), in turn through ``routes``."""
        if not routes:
            return []
        per_second = min(self.rate, len(routes) / self.period)
        cap = max(1.0, per_second * self.gap)
        if self._last is None:  # the first take: as if a whole gap had passed
            self._last, self._credit = now, cap
        self._credit = min(self._credit + (now - self._last) * per_second, cap)
        self._last = now
        picked: list[str] = []
        while self._credit >= 1.0 and len(picked) < len(routes):
            self._credit -= 1.0
            picked.append(routes[self._cursor % len(routes)])
            self._cursor += 1
        self._cursor %= len(routes)
        return picked

"""Retrying, in the runtime's two senses: a failed job's backoff, and a failed Redis call.

**Job retries.** The seed waited ``2 ** attempts`` seconds; that stays the shape.
Jitter spreads the retries of jobs that failed together (a dependency outage) so
they do not return together: the delay is drawn uniformly from
``[(1 - jitter) * d, d]``.

**Redis calls.** :class:`RedisCaller` is the one driver every long-lived task of
the runtime uses (the worker's fetcher, acker, lease keeper and reaper, the
promoter, the Redis leader elector). ``call`` keeps trying an operation until
Redis answers, so a process whose Redis went away resumes on its own when it
comes back instead of stopping silently; ``attempt`` tries once and reports a
failure as None, for callers whose own loop is the retry (leader election). Its
``ok`` flag (did the last call succeed?) is what ``/readyz`` reports.

An outage is logged once per client, however many tasks notice it: one ERROR line
when the first call fails, a WARNING reminder after 10 s, 20 s, 40 s... (at most every
5 minutes) while it lasts, and one INFO line with its length when Redis answers again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import weakref
from collections.abc import Callable
from typing import TypeVar

from bananas.client import AsyncClient
from bananas.errors import BananasError
from bananas.models import DEFAULT_BACKOFF_CAP
from bananas.ops import Op
from bananas.transport import FastLane, raise_if_cancelled

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Base of the exponential (seconds for the first retry is base * 2).
BACKOFF_BASE = 1.0
#: Fraction of the delay that is randomised.
BACKOFF_JITTER = 0.25
#: Pause before retrying a Redis call that failed (doubles up to the max).
RECONNECT_MIN, RECONNECT_MAX = 0.05, 5.0


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


#: First reminder that Redis is still unreachable (seconds); the gap doubles up to the max.
REMINDER_FIRST, REMINDER_MAX = 10.0, 300.0


class Outage:
    """One client's view of Redis being down, shared by every caller on that client, so
    that an outage is reported once rather than once per task."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.since: float | None = None
        self._gap = REMINDER_FIRST
        self._next = 0.0

    def failed(self, what: str, exc: BaseException) -> None:
        now = self.clock()
        if self.since is None:
            self.since, self._gap, self._next = now, REMINDER_FIRST, now + REMINDER_FIRST
            logger.error("%s failed, retrying with backoff: %s", what, exc)
        elif now >= self._next:
            logger.warning("Redis still unreachable after %.0fs: %s", now - self.since, exc)
            self._gap = min(self._gap * 2, REMINDER_MAX)
            self._next = now + self._gap

    def succeeded(self) -> None:
        if self.since is not None:
            logger.info("Redis is reachable again after %.1fs", self.clock() - self.since)
            self.since = None


_outages: weakref.WeakKeyDictionary[AsyncClient, Outage] = weakref.WeakKeyDictionary()


def outage_of(client: AsyncClient) -> Outage:
    """The outage record shared by every :class:`RedisCaller` on ``client``."""
    found = _outages.get(client)
    if found is None:
        found = _outages[client] = Outage()
    return found


class RedisCaller:
    """Runs broker operations on a client, retrying the ones that fail.

    ``pause`` and ``max_pause`` bound the wait between tries (it doubles from one to
    the other); pass the same value twice for a fixed pause. Not thread-safe: one
    event loop uses it.
    """

    def __init__(
        self,
        client: AsyncClient,
        *,
        pause: float = RECONNECT_MIN,
        max_pause: float = RECONNECT_MAX,
    ) -> None:
        self.client = client
        self.pause = pause
        self.max_pause = max_pause
        #: Did the last call reach Redis? (False until the first one does.)
        self.ok = False
        self._outage = outage_of(client)
        #: The error of the last failed call while Redis is failing (None once it answers).
        self.last_error: BaseException | None = None

    async def call(self, make: Callable[[], Op[T]], lane: FastLane | None = None) -> T:
        """Run the operation ``make()`` builds; on a failure wait with backoff and rebuild it.

        Returns the operation's result once Redis answers; never raises
        :class:`BananasError` (a cancellation of the calling task still ends it).
        ``lane`` sends it on a dedicated connection instead of the client's pool.
        """
        pause = self.pause
        while True:
            try:
                result = await self._drive(make(), lane)
            except BananasError as exc:
                raise_if_cancelled()
                self._failed("Redis call", exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, self.max_pause)
                continue
            self._succeeded()
            return result

    async def attempt(self, op: Op[T], what: str) -> T | None:
        """Run ``op`` once; on a failure log ``what`` failed and return None instead of raising."""
        try:
            result = await self._drive(op, None)
        except BananasError as exc:
            self._failed(what, exc)
            return None
        self._succeeded()
        return result

    async def _drive(self, op: Op[T], lane: FastLane | None) -> T:
        return await self.client.run(op, lane=lane)

    def _failed(self, what: str, exc: BaseException) -> None:
        self.ok = False
        self.last_error = exc
        self._outage.failed(what, exc)

    def _succeeded(self) -> None:
        self.ok = True
        self._outage.succeeded()
        self.last_error = None

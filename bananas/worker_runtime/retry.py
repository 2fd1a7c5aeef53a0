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
"""

from __future__ import annotations

import asyncio
import logging
import random
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
        self._down = False  # a call failed and none has succeeded since
        #: The error of the last failed call while Redis is failing (None once it answers).
        self.last_error: BananasError | None = None

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
                if not self._down:
                    logger.error("Redis call failed, retrying: %s", exc)
                self._failed(exc)
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
            logger.warning("%s failed: %s", what, exc)
            self._failed(exc)
            return None
        self._succeeded()
        return result

    async def _drive(self, op: Op[T], lane: FastLane | None) -> T:
        return await self.client.run(op, lane=lane)

    def _failed(self, exc: BananasError) -> None:
        self.ok = False
        self._down = True
        self.last_error = exc

    def _succeeded(self) -> None:
        if self._down:
            logger.info("Redis is reachable again")
        self.ok = True
        self._down = False
        self.last_error = None

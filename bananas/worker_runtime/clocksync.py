"""This host's clock against Redis' clock, for the one decision still taken on the host.

Every deadline and due time lives in Redis and is compared with Redis' own clock
(``TIME`` inside the scripts), so a skewed host can neither reap a live job nor
promote a job early. One process still has to compare with a clock of its own: the
cron leader, which chooses which slot of a schedule is due now. It therefore
measures how far its clock is from Redis' (``TIME``, halfway through the round
trip) at start and at every heartbeat, exports the offset as the
``bananas_clock_offset_seconds`` gauge, logs a warning when it exceeds
:data:`WARN_ABOVE` (and once more when it is back under), and reads the time as
Redis has it: its own clock plus the offset.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from bananas.client import AsyncClient
from bananas.ops import Op, command

logger = logging.getLogger(__name__)

#: Offsets above this many seconds are logged as a warning (docs/reliability.md).
WARN_ABOVE = 1.0


class RedisClock:
    """The host clock corrected to Redis' clock (see the module docstring)."""

    def __init__(
        self,
        client: AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
        warn_above: float = WARN_ABOVE,
        gauge: Any = None,
    ) -> None:
        self.client = client
        self.clock = clock
        self.warn_above = warn_above
        self.gauge = gauge
        #: Redis' clock minus this host's, in seconds (0 until measured).
        self.offset = 0.0
        self._warned = False

    async def measure(self) -> float:
        """Ask Redis the time; update and return the offset."""
        # Measured against the host's real clock; applied to ``clock``, which a test may
        # have replaced by a fake one (the offset is then the real skew, about 0).
        before = time.time()
        seconds, micros = await self.client.run(_time())
        after = time.time()
        redis_now = int(seconds) + int(micros) / 1e6
        self.offset = redis_now - (before + after) / 2
        if self.gauge is not None:
            self.gauge.set(self.offset)
        self._report()
        return self.offset

    def now(self) -> float:
        """The time as Redis has it, in epoch seconds (``clock`` plus the offset)."""
        return self.clock() + self.offset

    def _report(self) -> None:
        far = abs(self.offset) > self.warn_above
        if far and not self._warned:
            logger.warning(
                "this host's clock is %+.3fs off Redis' clock (above %gs): cron slots are "
                "chosen by Redis' time; fix the host's time sync (NTP)",
                -self.offset,
                self.warn_above,
            )
        elif not far and self._warned:
            logger.info("this host's clock is back within %gs of Redis'", self.warn_above)
        self._warned = far


def _time() -> Op[Any]:
    reply = yield command("TIME")
    return reply

"""Skewed process clocks with libfaketime, for the clock-skew tests.

A process started with :meth:`SkewedClock.env` in its environment reads its wall
clock (``time.time``, ``datetime.now``) through libfaketime, shifted by an offset read
from a file at every call (``FAKETIME_NO_CACHE``), so a test can make the clock *jump*
while the process runs. The monotonic clock is left alone
(``FAKETIME_DONT_FAKE_MONOTONIC``), as an NTP step leaves it alone: asyncio's timers
keep working, only what the process believes the time of day is changes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

#: Where Debian and Ubuntu's ``libfaketime`` package puts the library.
LIBRARY_FOLDERS = ("/usr/lib/x86_64-linux-gnu/faketime", "/usr/lib/aarch64-linux-gnu/faketime")
LIBRARY_NAME = "libfaketime.so.1"


def library() -> str | None:
    """The libfaketime shared object, or None when it is not installed."""
    for folder in (os.environ.get("BANANAS_FAKETIME_LIB_DIR", ""), *LIBRARY_FOLDERS):
        path = Path(folder, LIBRARY_NAME)
        if folder and path.exists():
            return str(path)
    faketime = shutil.which("faketime")
    if faketime is not None:
        # /usr/bin/faketime -> /usr/lib/<arch>/faketime/ on Debian-like systems
        for candidate in Path("/usr/lib").glob(f"*/faketime/{LIBRARY_NAME}"):
            return str(candidate)
    return None


@dataclass
class SkewedClock:
    """One process's clock offset, in seconds, changeable while the process runs."""

    offset: float = 0.0
    path: str = field(default="")

    def __post_init__(self) -> None:
        if not self.path:
            fd, self.path = tempfile.mkstemp(prefix="bananas-faketime-")
            os.close(fd)
        self.set(self.offset)

    def set(self, offset: float) -> None:
        """Move the clock to real time plus ``offset`` seconds (a jump, if it changed)."""
        self.offset = offset
        tmp = f"{self.path}.tmp"
        Path(tmp).write_text(f"{offset:+.3f}\n")
        os.replace(tmp, self.path)  # the process never reads a half-written offset

    def env(self) -> dict[str, str]:
        """Environment variables that put a child process on this clock."""
        lib = library()
        if lib is None:
            raise RuntimeError("libfaketime is not installed (apt-get install faketime)")
        return {
            "LD_PRELOAD": lib,
            "FAKETIME_TIMESTAMP_FILE": self.path,
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            # The worker's own children (none today) and redis-py see the same clock.
            "FAKETIME_DONT_RESET": "1",
        }

    def cleanup(self) -> None:
        Path(self.path).unlink(missing_ok=True)

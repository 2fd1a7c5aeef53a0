"""Durations as people and Go write them: ``500ms``, ``30s``, ``5m``, ``1h30m``, or seconds.

One parser for every place that takes a duration: the environment (``JOB_TIMEOUT``),
the command line (``--delay 10m``) and the SDK (``submit(delay="10m")``).
"""

from __future__ import annotations

import math
import re

__all__ = ["DURATION_FORMS", "parse_duration"]

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
DURATION_FORMS = "a Go duration like 500ms, 30s, 5m or 1h30m, or a number of seconds"


def parse_duration(text: str) -> float:
    """Parse ``30s`` / ``5m`` / ``1h30m`` / ``250ms`` / ``12.5`` into seconds.

    Raises ValueError on anything else (including negative values).
    """
    text = text.strip()
    if not text:
        raise ValueError("empty duration")
    try:
        seconds = float(text)
    except ValueError:
        pos, seconds = 0, 0.0
        for match in _DURATION_RE.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if pos != len(text):
            raise ValueError(f"not a duration: {text!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"not a non-negative duration: {text!r}")
    return seconds

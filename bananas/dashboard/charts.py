"""Throughput charts: per-minute series summed over routing keys, drawn as inline SVG.

The series come from the per-minute counters that the ack and fail scripts keep in
Redis (``KeySpace.route(r).throughput``), so they survive a restart of the dashboard
and of every worker. Drawing is a pure function of the numbers: no JavaScript, no
chart library, and the same picture in the page and in a screenshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

KINDS = ("completed", "failed", "retried")


#: Chart windows (minutes) and the bucket (minutes per point) each is drawn with.
WINDOWS = {60: 1, 1440: 10, 10080: 60}


@dataclass(frozen=True, slots=True)
class Series:
    """Counts per bucket of ``bucket`` minutes over ``minutes`` minutes ending at
    ``last_minute`` (epoch minutes)."""

    last_minute: int
    minutes: int
    bucket: int
    counts: dict[str, list[int]]

    @property
    def totals(self) -> dict[str, int]:
        return {k: sum(v) for k, v in self.counts.items()}

    @property
    def peak(self) -> int:
        return max((max(v) for v in self.counts.values() if v), default=0)


def build_series(
    per_route: Iterable[Mapping[int, Mapping[str, int]]],
    last_minute: int,
    minutes: int,
    bucket: int = 1,
) -> Series:
    """Sum per-route ``minute -> kind -> count`` maps into ``minutes // bucket`` points."""
    points = max(minutes // bucket, 1)
    first = last_minute - points * bucket + 1
    counts = {k: [0] * points for k in KINDS}
    for route in per_route:
        for minute, kinds in route.items():
            if first <= minute <= last_minute:
                for kind, n in kinds.items():
                    if kind in counts:
                        counts[kind][(minute - first) // bucket] += n
    return Series(last_minute, points * bucket, bucket, counts)


def svg(series: Series, width: int = 720, height: int = 140) -> str:
    """The series as an SVG line chart with a y scale and the first/last minute labels."""
    pad_left, pad_bottom, pad_top = 44, 18, 8
    plot_w, plot_h = width - pad_left - 8, height - pad_bottom - pad_top
    peak = max(series.peak, 1)
    step = plot_w / max(len(series.counts[KINDS[0]]) - 1, 1)

    def y(v: int) -> float:
        return pad_top + plot_h - plot_h * v / peak

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="jobs per {series.bucket} minute(s), last {series.minutes} minutes">',
        f'<line x1="{pad_left}" y1="{y(0):.1f}" x2="{width - 8}" y2="{y(0):.1f}" '
        'stroke="currentColor" stroke-opacity=".3"/>',
        f'<text x="{pad_left - 6}" y="{y(peak) + 4:.1f}" text-anchor="end" '
        f'font-size="11" fill="currentColor">{peak}</text>',
        f'<text x="{pad_left - 6}" y="{y(0) + 4:.1f}" text-anchor="end" '
        'font-size="11" fill="currentColor">0</text>',
    ]
    for kind in KINDS:
        points = " ".join(
            f"{pad_left + i * step:.1f},{y(v):.1f}" for i, v in enumerate(series.counts[kind])
        )
        parts.append(
            f'<polyline class="{kind}" data-kind="{kind}" fill="none" stroke-width="1.6" '
            f'points="{points}"/>'
        )
    first = _clock(series.last_minute - series.minutes + 1, series.minutes)
    last = _clock(series.last_minute, series.minutes)
    parts.append(
        f'<text x="{pad_left}" y="{height - 4}" font-size="11" fill="currentColor">{first}</text>'
    )
    parts.append(
        f'<text x="{width - 8}" y="{height - 4}" text-anchor="end" font-size="11" '
        f'fill="currentColor">{last} UTC</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _clock(minute: int, span: int) -> str:
    at = datetime.fromtimestamp(minute * 60, UTC)
    return at.strftime("%H:%M" if span <= 1440 else "%m-%d %H:%M")

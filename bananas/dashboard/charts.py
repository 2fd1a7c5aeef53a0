"""Throughput and timing charts: series summed over routing keys, drawn as inline SVG.

The series come from the per-minute counters that the ack and fail scripts keep in
Redis (``KeySpace.route(r).throughput``), so they survive a restart of the dashboard
and of every worker. Drawing is a pure function of the numbers: no JavaScript, no
chart library, and the same picture in the page and in a screenshot.

The queue-wait and run-time percentiles come from the histograms that the same
scripts keep (``bananas.timings``): summed over routing keys and points first, then
the quantile is read, so an "all routing keys" p99 is a true p99.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

from bananas import timings

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


# -- queue wait and run time percentiles ---------------------------------------------------

#: Percentile chart windows (minutes): whether the points come from the hourly
#: histograms, and how many histogram points make one chart point.
TIMING_WINDOWS = {60: (False, 1), 1440: (True, 1), 10080: (True, 6)}
#: The quantiles drawn, by line name.
QUANTILE_LINES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}

PerPoint = Mapping[int, Mapping[str, Mapping[int, int]]]


def percentile_lines(
    per_route: Iterable[PerPoint], kind: str, last: int, points: int, group: int = 1
) -> dict[str, list[float | None]]:
    """p50, p95 and p99 of ``kind`` (``wait`` or ``run``) per chart point, all routes'
    histograms summed first: ``points`` points of ``group`` histogram points each, the
    last ending at histogram point ``last``; None where nothing was counted."""
    first = last - points * group + 1
    merged: list[dict[int, int]] = [{} for _ in range(points)]
    for route in per_route:
        for point, kinds in route.items():
            if first <= point <= last and kind in kinds:
                timings.merge(merged[(point - first) // group], kinds[kind])
    return {name: [timings.quantile(h, q) for h in merged] for name, q in QUANTILE_LINES.items()}


def window_quantiles(route: PerPoint, kind: str) -> dict[str, float | None]:
    """p50, p95, p99 of ``kind`` over every point of one routing key, and ``n``."""
    hist: dict[int, int] = {}
    for kinds in route.values():
        if kind in kinds:
            timings.merge(hist, kinds[kind])
    out: dict[str, float | None] = {n: timings.quantile(hist, q) for n, q in QUANTILE_LINES.items()}
    out["n"] = float(sum(hist.values()))
    return out


def duration_text(seconds: float | None) -> str:
    """``850µs``, ``12ms``, ``3.4s``, ``5.0m``, ``2.1h``; ``-`` for None."""
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f}µs"
    if seconds < 1:
        return f"{seconds * 1e3:.0f}ms"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def lines_svg(
    lines: Mapping[str, list[float | None]],
    first_minute: int,
    last_minute: int,
    label: str,
    width: int = 720,
    height: int = 140,
) -> str:
    """Percentile lines (seconds) as an SVG chart; a gap where a point has no value."""
    pad_left, pad_bottom, pad_top = 54, 18, 8
    plot_w, plot_h = width - pad_left - 8, height - pad_bottom - pad_top
    values = [v for line in lines.values() for v in line if v is not None]
    peak = max(values, default=0.0) or 1.0
    count = max((len(line) for line in lines.values()), default=1)
    step = plot_w / max(count - 1, 1)

    def y(v: float) -> float:
        return pad_top + plot_h - plot_h * v / peak

    parts = [
        f'<svg class="chart timing" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}">',
        f'<line x1="{pad_left}" y1="{y(0):.1f}" x2="{width - 8}" y2="{y(0):.1f}" '
        'stroke="currentColor" stroke-opacity=".3"/>',
        f'<text x="{pad_left - 6}" y="{y(peak) + 4:.1f}" text-anchor="end" '
        f'font-size="11" fill="currentColor">{duration_text(peak) if values else "-"}</text>',
        f'<text x="{pad_left - 6}" y="{y(0) + 4:.1f}" text-anchor="end" '
        'font-size="11" fill="currentColor">0</text>',
    ]
    for name, line in lines.items():
        for run in _runs(line):
            if len(run) == 1:  # a lone point: a dot, as a line of one point would not show
                i, v = run[0]
                parts.append(
                    f'<circle class="{name}" data-line="{name}" cx="{pad_left + i * step:.1f}" '
                    f'cy="{y(v):.1f}" r="2.5"/>'
                )
                continue
            points = " ".join(f"{pad_left + i * step:.1f},{y(v):.1f}" for i, v in run)
            parts.append(
                f'<polyline class="{name}" data-line="{name}" fill="none" stroke-width="1.6" '
                f'points="{points}"/>'
            )
    span = last_minute - first_minute + 1
    parts.append(
        f'<text x="{pad_left}" y="{height - 4}" font-size="11" fill="currentColor">'
        f"{_clock(first_minute, span)}</text>"
    )
    parts.append(
        f'<text x="{width - 8}" y="{height - 4}" text-anchor="end" font-size="11" '
        f'fill="currentColor">{_clock(last_minute, span)} UTC</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _runs(line: list[float | None]) -> list[list[tuple[int, float]]]:
    """The stretches of consecutive points that have a value."""
    runs: list[list[tuple[int, float]]] = []
    current: list[tuple[int, float]] = []
    for i, v in enumerate(line):
        if v is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append((i, v))
    if current:
        runs.append(current)
    return runs

"""Throughput and percentile series and their SVG: pure functions."""

from __future__ import annotations

import re

import pytest

from bananas.dashboard.charts import (
    build_series,
    duration_text,
    lines_svg,
    percentile_lines,
    svg,
    window_quantiles,
)
from bananas.timings import bucket


def test_series_sum_routes_and_bucket_minutes() -> None:
    a = {100: {"completed": 3}, 101: {"completed": 1, "failed": 2}, 40: {"completed": 99}}
    b = {101: {"retried": 4, "unknown": 7}, 103: {"completed": 5}}
    s = build_series([a, b], last_minute=103, minutes=4)
    assert s.counts == {
        "completed": [3, 1, 0, 5],
        "failed": [0, 2, 0, 0],
        "retried": [0, 4, 0, 0],
    }
    assert s.totals == {"completed": 9, "failed": 2, "retried": 4} and s.peak == 5
    by_two = build_series([a, b], last_minute=103, minutes=4, bucket=2)
    assert by_two.counts["completed"] == [4, 5] and by_two.bucket == 2


def test_svg_draws_one_line_per_kind_scaled_to_the_peak() -> None:
    s = build_series([{0: {"completed": 10}, 1: {"failed": 5}}], last_minute=1, minutes=2)
    drawn = svg(s, width=100, height=60)
    lines = dict(re.findall(r'data-kind="(\w+)" [^>]*points="([^"]+)"', drawn))
    assert set(lines) == {"completed", "failed", "retried"}
    ys = [float(p.split(",")[1]) for p in lines["completed"].split()]
    assert ys[0] < ys[1], "the peak is drawn higher than zero"
    assert ">10<" in drawn, "the y scale names the peak"
    empty = svg(build_series([], last_minute=59, minutes=60))
    assert empty.count("<polyline") == 3


def test_percentiles_sum_routes_and_points_before_the_quantile() -> None:
    fast, slow = bucket(0.01), bucket(2.0)
    route_a = {100: {"run": {fast: 98}}, 101: {"run": {fast: 10}}}
    route_b = {100: {"run": {slow: 2}, "wait": {slow: 1}}}
    lines = percentile_lines([route_a, route_b], "run", last=101, points=2)
    p50, p99 = lines["p50"], lines["p99"]
    assert p50[0] == pytest.approx(0.01, rel=0.3) and p50[1] == pytest.approx(0.01, rel=0.3)
    assert p99[0] is not None and p99[0] > 1.0, "2 slow jobs in 100 make the p99 slow"
    grouped = percentile_lines([route_a, route_b], "run", last=101, points=1, group=2)
    assert len(grouped["p50"]) == 1
    assert percentile_lines([route_a], "wait", last=101, points=2)["p95"] == [None, None]
    whole = window_quantiles(route_b, "wait")
    assert whole["n"] == 1 and whole["p50"] == pytest.approx(2.0, rel=0.3)
    assert window_quantiles({}, "run") == {"p50": None, "p95": None, "p99": None, "n": 0.0}


def test_lines_svg_draws_runs_with_gaps_and_dots() -> None:
    picture = lines_svg({"p50": [0.1, 0.2, None, 0.4], "p99": [None, None, None, 1.5]}, 0, 3, "x")
    assert picture.count("<polyline") == 1 and picture.count("<circle") == 2
    assert ">1.5s<" in picture, "the y scale is labelled with the peak"
    empty = lines_svg({"p50": [None, None]}, 0, 1, "x")
    assert "<polyline" not in empty and "<circle" not in empty


def test_duration_text() -> None:
    assert [duration_text(v) for v in (None, 5e-5, 0.012, 3.44, 300, 9000)] == [
        "-",
        "50µs",
        "12ms",
        "3.4s",
        "5.0m",
        "2.5h",
    ]

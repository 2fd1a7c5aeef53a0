"""Throughput series and their SVG: pure functions."""

from __future__ import annotations

import re

from bananas.dashboard.charts import build_series, svg


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

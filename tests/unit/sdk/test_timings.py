"""The timing histograms' buckets, the scripts' spec and the quantiles read from them."""

from __future__ import annotations

import random

import pytest

from bananas.timings import (
    FIRST_EDGE,
    LAST_BUCKET,
    bucket,
    edge,
    merge,
    parse_fields,
    quantile,
    tally,
)

pytestmark = pytest.mark.timeout(10)


def test_buckets_span_a_factor_of_sqrt_two() -> None:
    assert bucket(0.0) == 0 and bucket(FIRST_EDGE / 2) == 0
    assert bucket(FIRST_EDGE) == 1
    for b in range(1, LAST_BUCKET):
        assert bucket(edge(b) * 1.0001) == b
        assert edge(b + 1) / edge(b) == pytest.approx(2**0.5)
    assert bucket(1e9) == LAST_BUCKET
    assert 86400 < edge(LAST_BUCKET) < 200_000


def test_tally_counts_run_times_and_first_attempt_waits() -> None:
    spec = tally([(0.01, 1.0), (0.01, None), (3.0, 1.0)]).split()
    counts = dict(zip(spec[::2], map(int, spec[1::2]), strict=True))
    assert counts == {f"r{bucket(0.01)}": 2, f"r{bucket(3.0)}": 1, f"w{bucket(1.0)}": 2}
    assert tally([]) == ""


def test_quantiles_are_within_a_bucket_of_the_truth() -> None:
    rng = random.Random(7)
    values = sorted(rng.lognormvariate(-3, 1.5) for _ in range(20_000))
    hist: dict[int, int] = {}
    for v in values:
        merge(hist, {bucket(v): 1})
    for q in (0.5, 0.95, 0.99):
        true = values[int(q * len(values)) - 1]
        assert quantile(hist, q) == pytest.approx(true, rel=0.2)
    assert quantile({}, 0.5) is None
    assert quantile({0: 4}, 0.5) == pytest.approx(FIRST_EDGE / 2)


def test_parse_fields_keeps_the_range_and_skips_strangers() -> None:
    fields = {"100:w3": "2", "100:r5": "1", "101:r5": "4", "99:r1": "9", "100:c": "7", "x:r1": "1"}
    assert parse_fields(fields, 100, 101) == {
        100: {"wait": {3: 2}, "run": {5: 1}},
        101: {"run": {5: 4}},
    }

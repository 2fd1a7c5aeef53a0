"""``records.utc_text``: the result record's ``completed_at`` formatted by hand, the
same text orjson writes for ``datetime.fromtimestamp(ts, UTC)``."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bananas.models import JobStatus
from bananas.records import result_record, utc_text
from tests.unit.strategies import PROPS

pytestmark = pytest.mark.timeout(60)


def by_datetime(ts: float) -> str:
    return orjson.dumps(datetime.fromtimestamp(ts, UTC)).decode()[1:-1]


EDGES = [
    second + fraction
    for second in (0, 1, 59, 1_764_650_000, 253_402_300_798)
    for fraction in (0.0, 0.5, 0.0000005, 0.0000015, 0.0000025, 0.9999994999, 0.9999995, 1 - 2**-30)
]


@pytest.mark.parametrize("ts", EDGES)
def test_the_edges_of_a_second_round_as_fromtimestamp_does(ts: float) -> None:
    assert utc_text(ts) == by_datetime(ts)


@PROPS
@given(st.floats(min_value=-1e10, max_value=253_402_300_799, allow_nan=False))
def test_any_time_is_written_as_orjson_writes_its_datetime(ts: float) -> None:
    assert utc_text(ts) == by_datetime(ts)


def test_a_run_of_times_within_and_across_seconds() -> None:
    start = 1_764_650_000.25
    for i in range(20_000):
        ts = start + i * 0.000173
        assert utc_text(ts) == by_datetime(ts), ts


def test_threads_formatting_different_seconds_never_mix_them() -> None:
    wrong: list[float] = []

    def run(base: float) -> None:
        for i in range(5_000):
            ts = base + (i % 7) * 1.000001
            if utc_text(ts) != by_datetime(ts):
                wrong.append(ts)

    threads = [threading.Thread(target=run, args=(1e9 + k * 3600,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def test_the_result_record_keeps_its_fields() -> None:
    record = orjson.loads(result_record("j", JobStatus.COMPLETED, "", 0.5, 1_764_650_000.5, 3))
    assert record == {
        "job_id": "j",
        "status": "completed",
        "result": 3,
        "error": "",
        "completed_at": "2025-12-02T04:33:20.500000+00:00",
        "duration": 0.5,
    }

"""The executor's queue wait of a first attempt: the shortcut it takes for a record's
UTC timestamps (``executor._RECORD_EPOCH``) gives what ``datetime.timestamp`` gives."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bananas.models import Job
from bananas.worker_runtime.executor import _RECORD_EPOCH, Executor
from bananas.worker_runtime.registry import Registry
from tests.unit.strategies import PROPS

pytestmark = pytest.mark.timeout(60)

moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC)
)


@PROPS
@given(moments)
def test_the_shortcut_equals_timestamp(moment: datetime) -> None:
    parsed = Job.model_validate_json(f'{{"name": "n", "created_at": "{moment.isoformat()}"}}')
    ready = parsed.created_at
    assert ready.tzinfo is _RECORD_EPOCH.tzinfo, "pydantic's UTC tzinfo is one object"
    assert (ready - _RECORD_EPOCH).total_seconds() == ready.timestamp() == moment.timestamp()


@pytest.mark.parametrize(
    "tz", [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
)
def test_a_wait_is_the_same_whatever_the_record_time_zone(tz: timezone) -> None:
    now = 1_764_650_000.0
    executor = Executor(Registry(), job_timeout=1, threads=ThreadPoolExecutor(1), clock=lambda: now)
    created = datetime.fromtimestamp(now - 2.5, tz)
    for text in (created.isoformat(), created.astimezone(UTC).isoformat()):
        job = Job.model_validate_json(f'{{"name": "n", "created_at": "{text}", "attempts": 1}}')
        assert executor._waited(job) == pytest.approx(2.5, abs=1e-6)
    later = Job.model_validate_json(f'{{"name": "n", "created_at": "{text}", "attempts": 2}}')
    assert executor._waited(later) is None

"""Bad input, generated, for the worker runtime:

- job records through the worker's ``Executor`` end to end: the executor turns *any*
  record into an outcome and never raises;
- cron expressions and time zones: ``check_schedule`` raises ``ValueError`` only, and a
  schedule it accepts yields slots (``next_slot`` after, ``latest_slot`` at or before
  ``now``) or a ``ValueError`` — the two things the scheduler's tick handles.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bananas.broker import Leased
from bananas.models import Schedule
from bananas.worker_runtime import Registry
from bananas.worker_runtime.cron import check_schedule, decide, latest_slot, next_slot
from bananas.worker_runtime.executor import Executor
from tests.unit.strategies import PROPS, json_values, record_dicts

pytestmark = pytest.mark.timeout(120)


# -- job records through the executor --------------------------------------------------------


def _executor() -> tuple[Executor, ThreadPoolExecutor]:
    registry = Registry()
    registry.register("ok", lambda job: job.payload)
    threads = ThreadPoolExecutor(max_workers=1)
    return Executor(registry, job_timeout=5, threads=threads), threads


@PROPS
@given(
    st.text() | (json_values | record_dicts).map(lambda v: orjson.dumps(v).decode()),
    st.integers(min_value=0, max_value=50),
)
@example('{"id":"a","name":"ok","payload":{"x":1}}', 1)
@example('{"id":"a","name":"ok","max_retries":-5}', 1)
@example('{"id":"a","name":"ok","v":999}', 1)
def test_executor_turns_any_record_into_an_outcome(record: str, attempt: int) -> None:
    executor, threads = _executor()
    try:
        finished = asyncio.run(executor.run("default", Leased("job-1", record, attempt)))
    finally:
        threads.shutdown(wait=True)
    assert finished.outcome.id == "job-1" and finished.outcome.attempt == attempt
    assert finished.status in ("completed", "retried", "dead")
    body = orjson.loads(finished.outcome.result)
    assert body["status"] in ("completed", "failed")
    if finished.failed:
        assert finished.outcome.error, "a failure says why"


# -- cron ----------------------------------------------------------------------------------

cron_atoms = st.sampled_from(
    ["*", "?", "L", "W", "0", "1", "5", "7", "12", "23", "31", "59", "60", "99", "-1", "mon",
     "jan", "xyz", "1-5", "5-1", "*/0", "*/15", "1,2", "1#5", "mon#9", "2/3", ""]
)  # fmt: skip
cron_exprs = st.lists(cron_atoms, min_size=4, max_size=7).map(" ".join) | st.text(max_size=30)
zones = st.sampled_from(
    ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe",
     "America", "Etc", "", "../../etc/passwd", "UTC/", "Mars/Base", "utc"]
) | st.text(max_size=20)  # fmt: skip
moments = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
)


@PROPS
@given(cron_exprs, zones, moments)
@example("0 0 31 2 *", "UTC", datetime(2026, 1, 1, tzinfo=UTC))
@example("30 2 * * *", "America/New_York", datetime(2026, 3, 8, 1, tzinfo=UTC))
@example("* * * * *", "America", datetime(2026, 1, 1, tzinfo=UTC))
def test_cron_is_checked_with_value_errors_only(expr: str, tz: str, now: datetime) -> None:
    schedule = Schedule(id="s", cron=expr, job="j", timezone=tz)
    try:
        check_schedule(schedule)
    except ValueError:
        return
    try:
        after = next_slot(schedule, now)
        before = latest_slot(schedule, now)
    except ValueError:
        return  # e.g. "0 0 31 2 *" never happens: the scheduler records the error
    assert after > now and after.tzinfo is not None
    assert before <= now
    assert after - before <= timedelta(days=366 * 8), "slots are not absurdly far apart"
    decision = decide(schedule, None, now)
    assert decision.slot is None and decision.next_time == after

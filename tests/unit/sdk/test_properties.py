"""Bad input, generated, for the SDK: nothing a caller, an environment or a Redis
record can hold crashes anything unexpected, and every rejection is the documented
error type.

- job records (``decode_job``): a ``Job`` or a ``ValueError``;
- payloads: JSON round trip through the client's record, or ``InvalidJobError``;
- routing keys: accepted exactly when they follow the rule, else
  ``InvalidRoutingKeyError`` (a ``ValueError``);
- durations and every environment variable: a value, else ``ValueError`` /
  ``ConfigError`` naming the variable.

The worker runtime's half (the executor, cron) is in
``tests/unit/worker_runtime/test_properties.py``.
"""

from __future__ import annotations

import string
from typing import Any

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bananas.client import ClientCore, JobSpec
from bananas.config import ENV_VARS, Settings
from bananas.durations import parse_duration
from bananas.errors import ConfigError, InvalidJobError, InvalidRoutingKeyError
from bananas.models import Job, JobStatus
from bananas.records import decode_job
from bananas.validation import validate_routing_key
from tests.unit.strategies import PROPS, RULE, anything, json_values, record_dicts

pytestmark = pytest.mark.timeout(120)


# -- job records ---------------------------------------------------------------------------


@PROPS
@given(st.text() | st.binary().map(lambda b: b.decode("latin-1")))
@example('{"id": "x", "name": "n", "v": 1}')
@example('{"name": {"$ne": 1}}')
@example("\x80\x04\x95 pickle?")
def test_decode_job_on_any_text(record: str) -> None:
    try:
        job = decode_job(record)
    except ValueError:
        return
    assert isinstance(job, Job)


@PROPS
@given(json_values | record_dicts)
def test_decode_job_on_any_json(value: Any) -> None:
    record = orjson.dumps(value).decode()
    try:
        job = decode_job(record, attempts=2)
    except ValueError:
        return
    assert isinstance(job, Job) and job.attempts == 2
    if isinstance(value, dict) and "payload" in value:
        assert job.payload == value["payload"], "the payload is handed over untouched"


@PROPS
@given(record_dicts, st.integers(0, 100), st.text(max_size=50), st.sampled_from(list(JobStatus)))
def test_decode_job_live_state_is_as_if_assigned(
    value: Any, attempts: int, error: str, status: JobStatus
) -> None:
    """The live state and the leased id land on the job as plain assignment would put
    them: readable, marked as set, kept by a copy and a dump."""
    record = orjson.dumps(value).decode()
    try:
        job = decode_job(record, attempts=attempts, error=error, status=status, job_id="leased")
    except ValueError:
        return
    assert (job.id, job.attempts, job.status) == ("leased", attempts, status)
    assert job.error + ("\n" + job.traceback if job.traceback else "") == error
    assert {"id", "attempts", "error", "traceback", "status"} <= job.model_fields_set
    dumped = job.model_copy().model_dump(exclude_unset=True)
    assert dumped["id"] == "leased" and dumped["attempts"] == attempts


# -- payloads ------------------------------------------------------------------------------


def _core() -> ClientCore:
    return ClientCore(
        success_ttl=60,
        failure_ttl=60,
        max_payload_bytes=64 * 1024,
        max_retries=3,
        prefix="props",
        clock=lambda: 1_800_000_000.0,
    )


@PROPS
@given(anything)
def test_any_payload_round_trips_as_json_or_is_refused(payload: Any) -> None:
    try:
        new = _core().build(JobSpec("handler", payload))
    except InvalidJobError:
        return
    job = decode_job(new.record)
    assert job.payload == orjson.loads(orjson.dumps(payload)), "what the handler gets"
    assert orjson.loads(new.record)["payload"] == job.payload


@PROPS
@given(
    name=st.text(max_size=250) | st.none() | st.integers(),
    routing_key=st.text(max_size=80) | st.none() | st.integers(),
    priority=st.text(max_size=8) | st.sampled_from(["high", "normal", "low"]),
    max_retries=st.integers(min_value=-3, max_value=5) | st.floats() | st.none(),
    delay=st.floats(allow_nan=False) | st.none(),
    job_id=st.text(max_size=210) | st.none(),
)
def test_any_submit_is_built_or_refused_with_invalid_job_error(
    name: Any, routing_key: Any, priority: Any, max_retries: Any, delay: Any, job_id: Any
) -> None:
    spec = JobSpec(
        name,
        {"n": 1},
        priority=priority,
        routing_key=routing_key,
        max_retries=max_retries,
        delay=delay,
        job_id=job_id or None,
    )
    try:
        new = _core().build(spec)
    except InvalidJobError:
        return
    assert RULE.fullmatch(new.routing_key)
    assert decode_job(new.record).name == name


# -- routing keys --------------------------------------------------------------------------


@PROPS
@given(st.text(max_size=70) | st.from_regex(RULE, fullmatch=True))
@example("gpu\n")
@example("a" * 64)
@example("a" * 65)
@example("{gpu}")
@example("a:b")
def test_routing_key_is_accepted_exactly_when_it_follows_the_rule(key: str) -> None:
    if RULE.fullmatch(key):
        assert validate_routing_key(key) == key
    else:
        with pytest.raises(InvalidRoutingKeyError, match="a routing key is 1-64 characters"):
            validate_routing_key(key)


@PROPS
@given(st.none() | st.integers() | st.binary() | st.lists(st.text(), max_size=2))
def test_a_routing_key_that_is_not_text_is_refused(key: Any) -> None:
    with pytest.raises(InvalidRoutingKeyError):
        validate_routing_key(key)


# -- durations and the environment ---------------------------------------------------------

units = st.sampled_from([("h", 3600.0), ("m", 60.0), ("s", 1.0), ("ms", 1e-3), ("us", 1e-6)])


@PROPS
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=10_000), units), min_size=1))
def test_go_durations_parse_to_their_sum(parts: list[tuple[int, tuple[str, float]]]) -> None:
    text = "".join(f"{n}{unit}" for n, (unit, _) in parts)
    expected = sum(n * scale for n, (_, scale) in parts)
    assert parse_duration(text) == pytest.approx(expected)


@PROPS
@given(st.text(max_size=30) | st.text(alphabet="0123456789.hmsun-+e µ", max_size=12))
@example("nan")
@example("inf")
@example("1e400")
@example("-1s")
@example("1h-5m")
@example("5m ")
def test_any_text_is_a_duration_or_a_value_error(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except ValueError:
        return
    assert isinstance(seconds, float) and 0 <= seconds < float("inf")


@PROPS
@given(
    st.sampled_from(sorted(set(ENV_VARS.values()))),
    st.text(max_size=20) | st.text(alphabet=string.digits + ",.-hms", max_size=8),
)
@example("WORKER_CONCURRENCY", "0")
@example("METRICS_PORT", "70000")
@example("WORKER_PRIORITIES", "urgent")
@example("WORKER_ROUTING_KEYS", "a,,b\n")
@example("LEASE_DURATION", "0.5s")
def test_any_environment_value_is_read_or_refused_with_config_error(var: str, raw: str) -> None:
    try:
        Settings.from_env({var: raw})
    except ConfigError as exc:
        assert var in str(exc), "the error names the variable"

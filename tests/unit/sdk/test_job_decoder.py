"""The fast job-record decoder against pydantic, the judge (``bananas.job_decoder``).

For every record, valid or hostile: either the fast path declines (returns None, and
``decode_job`` then gives pydantic's answer: the same job, or the same error with the
same reason), or pydantic accepts the record too and the two jobs are the same: the
same field values of the same types, the same fields marked as set, the same dump.
"""

from __future__ import annotations

import json
import time
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from bananas.job_decoder import PlainRecord, fast_job
from bananas.models import Job, JobStatus, Priority
from bananas.records import decode_job, job_record
from tests.unit.strategies import PROPS, json_values, record_dicts

pytestmark = pytest.mark.timeout(120)

#: Fields a record may hold that the fast path never takes (the live state, which the
#: worker keeps beside the record in Redis): a record with one goes to pydantic.
LIVE_ONLY = {
    "status",
    "attempts",
    "error",
    "traceback",
    "earlier_errors",
    "progress",
    "progress_info",
}
#: Fields whose default is made when the record lacks them (a fresh id, the time now).
MADE_PER_JOB = {"id", "created_at", "updated_at"}

NOW = 1_764_650_000.123456


def live_state(job_id: str | None = "leased-id") -> dict[str, Any]:
    state: dict[str, Any] = {
        "attempts": 2,
        "error": "",
        "traceback": "",
        "earlier_errors": [],
        "status": JobStatus.PROCESSING,
    }
    if job_id is not None:
        state["id"] = job_id
    return state


def by_pydantic(record: str, live: dict[str, Any]) -> Job:
    """The reference: pydantic's validation, then the live state assigned."""
    job = Job.model_validate_json(record)
    for key, value in live.items():
        setattr(job, key, value)
    return job


def kinds(value: Any) -> Any:
    """A value's shape with every type spelled out (``1`` and ``1.0`` differ)."""
    if isinstance(value, dict):
        return ("dict", [(kinds(k), kinds(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [kinds(v) for v in value])
    if value != value:  # NaN (pydantic takes it in a float field, as JSON's parser reads it)
        return (type(value), "NaN")
    tz = getattr(value, "tzinfo", None)
    return (type(value), value, type(tz))


def assert_same(fast: Job, slow: Job, record: dict[str, Any] | None = None) -> None:
    made = MADE_PER_JOB - set(record or {}) - {"id"}
    a = {k: v for k, v in fast.__dict__.items() if k not in made}
    b = {k: v for k, v in slow.__dict__.items() if k not in made}
    assert list(fast.__dict__) == list(slow.__dict__), "the model's field order"
    assert kinds(a) == kinds(b)
    assert fast.model_fields_set == slow.model_fields_set
    assert fast.__pydantic_private__ == slow.__pydantic_private__
    assert fast.__pydantic_extra__ == slow.__pydantic_extra__
    if not made and fast.timeout == fast.timeout:
        assert fast == slow
        assert fast.model_dump_json() == slow.model_dump_json()


def compare(record: str, live: dict[str, Any], fields: dict[str, Any] | None = None) -> bool:
    """Check the fast path against pydantic on ``record``; True when it took the record."""
    fast = fast_job(record, dict(live))
    try:
        slow = by_pydantic(record, dict(live))
    except ValidationError as exc:
        assert fast is None, f"the fast path took a record pydantic rejects: {exc}"
        with pytest.raises(ValidationError) as caught:
            decode_job(record, attempts=2, status=JobStatus.PROCESSING, job_id="leased-id")
        assert str(caught.value) == str(exc), "the same reason as pydantic's"
        return False
    if fast is None:
        return False
    assert_same(fast, slow, fields)
    return True


def record(**overrides: Any) -> dict[str, Any]:
    """A record as ``job_record`` writes it, as a dict, with ``overrides`` applied
    (a value of ``...`` leaves the field out)."""
    base = orjson.loads(
        job_record(
            job_id="rec-id",
            name="work",
            description="",
            payload='{"i": 1}',
            priority=Priority.NORMAL,
            routing_key="default",
            created=NOW,
            due=None,
            max_retries=3,
            timeout=None,
            success_ttl=3600.0,
            failure_ttl=86400.0,
        )
    )
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def written(**kwargs: Any) -> str:
    """A record written by ``job_record`` itself."""
    args: dict[str, Any] = {
        "job_id": "rec-id",
        "name": "work",
        "description": "a job",
        "payload": "null",
        "priority": Priority.HIGH,
        "routing_key": "gpu-1",
        "created": NOW,
        "due": None,
        "max_retries": 3,
        "timeout": None,
        "success_ttl": 0.0,
        "failure_ttl": 86400.0,
    }
    args.update(kwargs)
    return job_record(**args)


# -- what the fast path must take, and build exactly as pydantic does ------------------------

VALID = [
    written(),
    written(priority=Priority.LOW, routing_key="x" * 64, max_retries_set=False),
    written(priority=Priority.NORMAL, due=NOW + 30, timeout=2.5),
    written(timeout=5, success_ttl=1, failure_ttl=2**53),
    written(created=float(int(NOW)), due=float(int(NOW))),
    written(group="tenant-7", meta={"traceparent": "00-abc-def-01", "tracestate": ""}),
    written(
        workflow={
            "workflow_id": "wf",
            "node": 3,
            "parent_results": [1, None, {"a": [2.5]}],
            "parent_errors": ["", "boom"],
        }
    ),
    written(payload='{"n": 1180591620717411303424, "f": 1e308, "s": "é\u2028😀", "l": []}'),
    written(payload="-0.0"),
    written(payload='"text"'),
    written(payload="[1, 2.0, true, null]"),
    written(description="x" * 10_000, name="a.b:c/d"),
    orjson.dumps(record(payload={"k": 1, "k2": {"k": [1]}}), option=orjson.OPT_INDENT_2).decode(),
]


@pytest.mark.parametrize("text", VALID)
def test_the_fast_path_takes_a_written_record_and_builds_what_pydantic_builds(text: str) -> None:
    for live in (live_state(), live_state(None)):
        assert compare(text, live, orjson.loads(text)), "the fast path declined a plain record"


def test_decode_job_on_the_fast_path_has_the_live_state_as_assigned() -> None:
    text = written()
    job = decode_job(text, attempts=4, error="boom", status=JobStatus.PROCESSING, job_id="L")
    slow = by_pydantic(
        text,
        {
            "attempts": 4,
            "error": "boom",
            "traceback": "",
            "earlier_errors": [],
            "status": JobStatus.PROCESSING,
            "id": "L",
        },
    )
    assert_same(job, slow, orjson.loads(text))
    job.set_progress(50)  # the private attribute is there, as pydantic sets it up
    assert job.progress == 50.0


# -- what it must leave to pydantic (hostile, or merely unusual) -----------------------------

FIELD_VALUES: dict[str, list[Any]] = {
    "id": [None, 1, ["a"], ...],
    "name": [None, 1, "", ...],
    "description": [None, 0, {"a": 1}],
    "priority": ["urgent", "HIGH", 1, None, ["high"]],
    "routing_key": ["", "a b", "x" * 65, "gpu\n", "é", 7, None],
    "created_at": [
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00",
        "2026-01-01T00:00:00.123+00:00",
        "2026-01-01T00:00:00+01:00",
        "2026-13-01T00:00:00+00:00",
        "2026-02-30T00:00:00+00:00",
        "2026-01-01T24:00:00+00:00",
        "2026-01-01T23:59:60+00:00",
        "0000-01-01T00:00:00+00:00",
        "9999-12-31T23:59:59.999999+00:00",
        "\uff12\uff10\uff12\uff16-01-01T00:00:00+00:00",  # full-width digits
        "2026-01-01",
        1_764_650_000,
        1.5e9,
        None,
        "",
        ...,
    ],
    "scheduled_for": ["2026-01-01T00:00:00Z", "tomorrow", 0, True],
    "max_retries": [3.0, 3.5, "3", True, None, -1, 2**70, 1e400, ...],
    "max_retries_set": [1, 0, "true", None],
    "timeout": ["5", True, 1e999, -1, 0, 2**60, [1]],
    "success_ttl": [None, "60", 1e999, -5.0, 2**54, False],
    "failure_ttl": [None, {"s": 1}, 9e18],
    "group": [1, [], ""],
    "v": [1.0, "1", 2, 999, None, True],
    "meta": [None, [], {"a": 1}, {"a": None}, "x"],
    "workflow_id": [1, []],
    "node": [1.5, "1", True],
    "parent_results": [None, {"a": 1}, "x"],
    "parent_errors": [None, [1], [None], ["a", 2]],
    "status": ["processing", "bogus", 1],
    "attempts": [1, "x"],
    "error": ["", 1],
    "progress": [50, "x"],
    "unknown": [1, None],
}

HOSTILE = [
    pytest.param(record(**{field: value}), id=f"{field}={value!r}"[:60])
    for field, values in FIELD_VALUES.items()
    for value in values
]


@pytest.mark.parametrize("fields", HOSTILE)
def test_a_hostile_field_is_judged_by_pydantic(fields: dict[str, Any]) -> None:
    text = json.dumps(fields)  # (big integers and 1e999 included)
    compare(text, live_state(), fields)


RAW = [
    "",
    "null",
    "[]",
    '"a record"',
    "{",
    '{"name": "x"',
    '{"name": "x"} trailing',
    '{"name": 3, "name": "y"}',
    '{"name": "y", "name": 3}',
    '{"name": "x", "priority": "high", "priority": "nope"}',
    '{"name": "x", "timeout": NaN}',
    '{"name": "x", "timeout": Infinity}',
    '{"name": "x", "timeout": 1e999}',
    '{"name": "x", "payload": 123456789012345678901234567890}',
    '{"name": "\\ud800"}',
    '{"name": "x", "payload": "\\udc00"}',
    '\ufeff{"name": "x"}',
    '{"name": "x", "v": 1}',
    '{"name": "x", "max_retries": 1e2}',
    '{"name": "x", "max_retries": 100000000000000000000000}',
    "\x80\x04\x95 pickle?",
]


@pytest.mark.parametrize("text", RAW)
def test_raw_text_is_judged_by_pydantic(text: str) -> None:
    compare(text, live_state())


def test_every_field_of_job_is_either_checked_or_left_to_pydantic() -> None:
    """A field added to ``Job`` is a decision: give it a checker, or name it here."""
    assert set(PlainRecord.__annotations__) | LIVE_ONLY == set(Job.model_fields)
    assert not set(PlainRecord.__annotations__) & LIVE_ONLY


# -- generated records ----------------------------------------------------------------------


@PROPS
@given(record_dicts)
def test_generated_records_agree_with_pydantic(fields: dict[str, Any]) -> None:
    compare(orjson.dumps(fields).decode(), live_state(), fields)


@PROPS
@given(
    st.sampled_from(sorted(PlainRecord.__annotations__)),
    json_values | st.sampled_from(["2026-01-01T00:00:00+00:00", "high", "low", "x" * 65]),
    st.booleans(),
)
def test_one_field_of_a_plain_record_replaced_agrees_with_pydantic(
    field: str, value: Any, drop: bool
) -> None:
    fields = record(**{field: ... if drop else value})
    compare(orjson.dumps(fields).decode(), live_state(), fields)


@PROPS
@given(json_values)
def test_any_payload_comes_out_as_pydantic_gives_it(payload: Any) -> None:
    text = written(payload=orjson.dumps(payload).decode(), created=time.time())
    assert compare(text, live_state(), orjson.loads(text))

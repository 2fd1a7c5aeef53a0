"""Numeric settings are bounded to what Redis and Lua can store, with a clear error."""

from __future__ import annotations

import math

import pytest

from bananas.errors import InvalidJobError
from bananas.validation import (
    MAX_COUNT,
    MAX_DURATION_SECONDS,
    validate_count,
    validate_duration,
    validate_optional_duration,
)


@pytest.mark.parametrize("value", [0, 0.001, 1, 86400, MAX_DURATION_SECONDS])
def test_durations_in_range_are_kept(value: float) -> None:
    assert validate_duration(value, "success_ttl") == value


@pytest.mark.parametrize(
    "value", [-1, 1e20, math.inf, -math.inf, math.nan, MAX_DURATION_SECONDS + 1, "10", True, None]
)
def test_durations_out_of_range_are_refused_naming_the_setting(value: object) -> None:
    with pytest.raises(InvalidJobError, match=r"success_ttl must be a finite number of seconds"):
        validate_duration(value, "success_ttl")


def test_positive_durations_refuse_zero() -> None:
    with pytest.raises(InvalidJobError, match="above 0"):
        validate_duration(0, "lease", positive=True)


def test_none_means_the_default() -> None:
    assert validate_optional_duration(None, "timeout") is None
    with pytest.raises(InvalidJobError, match="timeout"):
        validate_optional_duration(float("inf"), "timeout")


def test_the_longest_duration_is_exact_in_lua_once_added_to_redis_time() -> None:
    # A deadline is TIME (ms) plus the duration (ms), held by a Lua double.
    now_ms = 4_102_444_800_000  # 2100-01-01
    assert now_ms + MAX_DURATION_SECONDS * 1000 < 2**53


@pytest.mark.parametrize("value", [0, 3, MAX_COUNT])
def test_counts_in_range_are_kept(value: int) -> None:
    assert validate_count(value, "max_retries") == value


@pytest.mark.parametrize("value", [-1, MAX_COUNT + 1, 2.0, "3", True, None])
def test_counts_out_of_range_are_refused(value: object) -> None:
    with pytest.raises(InvalidJobError, match="max_retries must be a whole number from 0"):
        validate_count(value, "max_retries")


def test_a_big_record_is_kept_as_a_stand_in_without_its_payload() -> None:
    import orjson

    from bananas.records import MAX_KEPT_RECORD_BYTES, kept_record

    small = orjson.dumps({"id": "a", "payload": "x"}).decode()
    assert kept_record(small) == ""
    big = orjson.dumps({"id": "b", "name": "n", "payload": "x" * MAX_KEPT_RECORD_BYTES}).decode()
    assert orjson.loads(kept_record(big)) == {"id": "b", "name": "n", "payload": None}
    assert kept_record("{" + "x" * MAX_KEPT_RECORD_BYTES) == "", "unreadable: keep the stored one"

"""The flow-control checks and encodings (pure functions)."""

from __future__ import annotations

import pytest

from bananas import InvalidJobError
from bananas.broker import _paused_of, serve_mask
from bananas.models import Priority
from bananas.records import canonical_hash
from bananas.validation import limit_spec, validate_group, validate_limit_key


@pytest.mark.parametrize(
    ("rate", "concurrency", "burst", "spec"),
    [
        ("100/s", None, None, "10.000000|5|0"),  # the default burst: 50 ms of the rate
        ("500/s", None, None, "2.000000|25|0"),
        ("20/s", None, None, "50.000000|2|0"),  # ... and at least 2
        ("6000/m", 3, None, "10.000000|5|3"),
        ("10/h", None, 1, "360000.000000|1|0"),
        (None, 2, None, "0.000000|2|2"),
        (None, None, None, ""),
    ],
)
def test_limit_spec(
    rate: str | None, concurrency: int | None, burst: int | None, spec: str
) -> None:
    assert limit_spec(rate, concurrency, burst) == spec


@pytest.mark.parametrize("rate", ["100", "100/d", "x/s", "0/s", "-1/s"])
def test_bad_rates(rate: str) -> None:
    with pytest.raises(InvalidJobError, match="rate"):
        limit_spec(rate, None, None)


def test_groups_and_limit_keys() -> None:
    assert validate_group("tenant:42") == "tenant:42"
    assert validate_limit_key("tenant:*") == "tenant:*"
    assert validate_limit_key("*") == "*"
    assert validate_limit_key("name:send_sms") == "name:send_sms"
    with pytest.raises(InvalidJobError):
        validate_limit_key("name:")
    for bad in ("", "a\nb", "name:x", "a*", "\x01"):
        with pytest.raises(InvalidJobError):
            validate_group(bad)
    with pytest.raises(InvalidJobError):
        validate_limit_key("a*b*")


def test_the_paused_mask_round_trips() -> None:
    assert _paused_of(serve_mask([Priority.LOW])) == [Priority.LOW]
    assert _paused_of(None) == [] and _paused_of("000") == []


def test_the_canonical_hash_ignores_key_order() -> None:
    assert canonical_hash({"a": 1, "b": [1, 2]}) == canonical_hash({"b": [1, 2], "a": 1})
    assert canonical_hash({"a": 1}) != canonical_hash({"a": 2})

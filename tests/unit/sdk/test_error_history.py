"""A job's stored error history: the latest attempt first, bounded, oldest dropped."""

from __future__ import annotations

from bananas.models import ATTEMPT_SEPARATOR, ERROR_HISTORY_MAX, TRACEBACK_HEAD
from bananas.records import earlier_errors, split_error, with_history


def test_each_attempt_is_kept_newest_first() -> None:
    first = f"ValueError: one\n{TRACEBACK_HEAD}  File x\nValueError: one"
    stored = with_history(first, None)
    assert stored == first
    stored = with_history("ValueError: two", stored)
    stored = with_history("lease expired: the worker running it was lost", stored)
    assert split_error(stored) == ("lease expired: the worker running it was lost", "")
    assert earlier_errors(stored) == ["ValueError: two", "ValueError: one"]


def test_the_history_is_bounded_by_dropping_the_oldest() -> None:
    stored = None
    for i in range(100):
        stored = with_history(f"E{i}: " + "x" * 1000, stored)
    assert stored is not None and len(stored) <= ERROR_HISTORY_MAX
    assert stored.startswith("E99: ")
    kept = stored.split(ATTEMPT_SEPARATOR)
    assert [e.split(":")[0] for e in kept] == [f"E{i}" for i in range(99, 99 - len(kept), -1)]

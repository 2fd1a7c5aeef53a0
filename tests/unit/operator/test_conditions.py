"""Status conditions keep their transition time unless their status flips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bananas.operator.conditions import FALSE, TRUE, Condition, merge_conditions

T = datetime(2024, 1, 1, tzinfo=UTC)


def test_new_conditions_get_now() -> None:
    out = merge_conditions(None, [Condition("Ready", TRUE, "PodsReady", "ok")], now=T, generation=3)
    assert out == [
        {
            "type": "Ready",
            "status": "True",
            "reason": "PodsReady",
            "message": "ok",
            "lastTransitionTime": "2024-01-01T00:00:00Z",
            "observedGeneration": 3,
        }
    ]


def test_transition_time_moves_only_on_flip() -> None:
    first = merge_conditions([], [Condition("Ready", TRUE, "A")], now=T)
    later = T + timedelta(hours=1)
    same = merge_conditions(first, [Condition("Ready", TRUE, "B", "new words")], now=later)
    assert same[0]["lastTransitionTime"] == "2024-01-01T00:00:00Z"
    assert same[0]["reason"] == "B"
    flipped = merge_conditions(same, [Condition("Ready", FALSE, "C")], now=later)
    assert flipped[0]["lastTransitionTime"] == "2024-01-01T01:00:00Z"


def test_others_kept_sorted_and_garbage_dropped() -> None:
    existing = [
        {"type": "Scaling", "status": "False", "reason": "Stable"},
        {"type": "Bogus", "status": "maybe"},
        "nonsense",
        {"status": "True"},
    ]
    out = merge_conditions(existing, [Condition("Ready", TRUE, "Ok")], now=T)
    assert [c["type"] for c in out] == ["Ready", "Scaling"]
    assert out[1] == existing[0]  # untouched conditions are kept as they were


def test_non_list_existing_is_ignored() -> None:
    assert len(merge_conditions("nonsense", [Condition("Ready", TRUE, "Ok")], now=T)) == 1

"""The autoscaler's KEDA-style extras: rate policies, the pause annotation, fallback."""

from __future__ import annotations

from typing import Any

import pytest

from bananas.models import Priority
from bananas.operator.autoscaler import (
    Change,
    Load,
    Memory,
    Policy,
    decide,
    fallback_size,
    is_paused,
    rate_limit,
)
from bananas.operator.meta import PAUSE_ANNOTATION
from bananas.operator.specs import FallbackSpec, SpecError, parse_workerpool

T0 = 1_700_000_000.0


def policy(**autoscaling: Any) -> Policy:
    spec = parse_workerpool(
        {"image": "bananas:1", "app": "app", "autoscaling": {"maxReplicas": 100, **autoscaling}}
    )
    return Policy.from_spec(spec.autoscaling)


def rules(*policies: dict[str, Any], select: str = "Max") -> dict[str, Any]:
    return {"stabilizationWindowSeconds": 0, "policies": list(policies), "selectPolicy": select}


def pods(value: int, period: int = 60) -> dict[str, Any]:
    return {"type": "Pods", "value": value, "periodSeconds": period}


def percent(value: int, period: int = 60) -> dict[str, Any]:
    return {"type": "Percent", "value": value, "periodSeconds": period}


@pytest.mark.parametrize(
    ("scale_up", "current", "desired", "changes", "allowed"),
    [
        # No policy: no limit.
        (rules(), 2, 50, (), 50),
        (rules(pods(4)), 2, 50, (), 6),
        # 4 pods were added 30 s ago: the period started at 2, so 2 + 4 = 6 is the cap.
        (rules(pods(4)), 6, 50, (Change(T0 - 30, 4),), 6),
        # ... and 61 s ago that addition is out of the period.
        (rules(pods(4)), 6, 50, (Change(T0 - 61, 4),), 10),
        (rules(percent(100)), 3, 50, (), 6),
        (rules(percent(50)), 3, 50, (), 5),  # ceil(4.5)
        # Max picks the largest change, Min the smallest.
        (rules(pods(4), percent(100)), 10, 50, (), 20),
        (rules(pods(4), percent(100), select="Min"), 10, 50, (), 14),
        (rules(pods(4), select="Disabled"), 10, 50, (), 10),
        # Never below the current size, never above what was asked.
        (rules(pods(4)), 2, 3, (), 3),
    ],
)
def test_scale_up_rates(
    scale_up: dict[str, Any],
    current: int,
    desired: int,
    changes: tuple[Change, ...],
    allowed: int,
) -> None:
    assert rate_limit(policy(scaleUp=scale_up), current, desired, changes, T0) == allowed


@pytest.mark.parametrize(
    ("scale_down", "current", "desired", "changes", "allowed"),
    [
        (rules(), 20, 1, (), 1),
        (rules(pods(2)), 20, 1, (), 18),
        # 2 were removed 10 s ago: the period started at 20, so 18 is the floor still.
        (rules(pods(2)), 18, 1, (Change(T0 - 10, -2),), 18),
        (rules(percent(10)), 20, 1, (), 18),
        (rules(percent(10)), 15, 1, (), 14),  # ceil(13.5): never more than 10 % removed
        (rules(pods(2), percent(50)), 20, 1, (), 10),  # Max: the largest drop
        (rules(pods(2), percent(50), select="Min"), 20, 1, (), 18),
        (rules(pods(2), select="Disabled"), 20, 1, (), 20),
        (rules(pods(2)), 20, 19, (), 19),
    ],
)
def test_scale_down_rates(
    scale_down: dict[str, Any],
    current: int,
    desired: int,
    changes: tuple[Change, ...],
    allowed: int,
) -> None:
    assert rate_limit(policy(scaleDown=scale_down), current, desired, changes, T0) == allowed


def busy(jobs: int) -> Load:
    return Load(depth={Priority.NORMAL: jobs})


def test_decide_applies_rates_and_remembers_its_changes() -> None:
    rated = policy(targetJobsPerReplica=1, scaleUp=rules(pods(4, period=60)))
    first = decide(rated, 2, busy(50), T0, Memory())
    assert first.desired == 6
    assert "rate-limited from 50" in first.message
    assert first.memory.changes == (Change(T0, 4),)
    # 15 s later the period still holds the first 4: no more room.
    second = decide(rated, 6, busy(50), T0 + 15, first.memory)
    assert second.desired == 6 and second.reason is None
    # Past the period: 4 more.
    third = decide(rated, 6, busy(50), T0 + 61, second.memory)
    assert third.desired == 10
    assert third.memory.changes == (Change(T0 + 61, 4),)


def test_decide_remembers_changes_through_the_status() -> None:
    rated = policy(targetJobsPerReplica=1, scaleUp=rules(pods(4)))
    first = decide(rated, 2, busy(50), T0, Memory())
    restored = Memory.from_status(first.memory.to_status(), now=T0 + 1)
    assert restored.changes == first.memory.changes
    assert decide(rated, 6, busy(50), T0 + 1, restored).desired == 6


def test_no_rates_keep_no_changes() -> None:
    plain = policy(targetJobsPerReplica=1)
    decision = decide(plain, 2, busy(50), T0, Memory())
    assert decision.desired == 50
    assert decision.memory.changes == ()
    assert "changes" not in decision.memory.to_status()


def test_waking_from_zero_and_going_to_zero_bypass_the_rates() -> None:
    rated = policy(
        targetJobsPerReplica=1,
        minReplicas=0,
        cooldownSeconds=0,
        scaleUp=rules(percent(10)),
        scaleDown=rules(pods(1)),
    )
    woken = decide(rated, 0, busy(5), T0, Memory())
    assert woken.desired >= 1  # 10 % of 0 pods would be none, for ever
    assert decide(rated, 8, busy(0), T0 + 120, Memory(last_active=T0)).desired == 0


def test_unreadable_changes_are_dropped() -> None:
    status = {
        "changes": [
            {"at": "2023-11-14T22:13:20Z", "delta": 3},
            {"at": "not a time", "delta": 1},
            {"at": "2023-11-14T22:13:20Z", "delta": True},
            {"at": "2999-01-01T00:00:00Z", "delta": 1},
            "junk",
        ]
    }
    assert Memory.from_status(status, now=T0 + 10).changes == (Change(T0, 3),)


def test_rate_policies_are_validated() -> None:
    with pytest.raises(SpecError):
        policy(scaleUp=rules({"type": "Nodes", "value": 1, "periodSeconds": 60}))
    with pytest.raises(SpecError):
        policy(scaleDown=rules(pods(0)))


@pytest.mark.parametrize(
    ("value", "paused"),
    [("true", True), ("True", True), ("false", False), ("", False), ("1", False)],
)
def test_is_paused(value: str, paused: bool) -> None:
    assert is_paused({PAUSE_ANNOTATION: value}) is paused


def test_not_paused_without_the_annotation() -> None:
    assert not is_paused({})


def test_fallback_after_the_threshold() -> None:
    fallback = FallbackSpec.model_validate({"failureThreshold": 3, "replicas": 2})
    assert [fallback_size(fallback, n) for n in range(5)] == [None, None, None, 2, 2]
    assert fallback_size(None, 100) is None

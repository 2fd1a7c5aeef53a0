"""A WorkerPool's status and conditions from one poll."""

from __future__ import annotations

from typing import Any

import pytest

from bananas.models import Priority
from bananas.operator.autoscaler import Load, Memory, PausedKey, Policy, Run, decide
from bananas.operator.pool_status import (
    Observation,
    observed_fields,
    pool_conditions,
    status_changed,
)


def deployment(replicas: int, ready: int) -> dict[str, Any]:
    """A Deployment the controller has seen, all pods of the current template."""
    return {
        "metadata": {"generation": 2},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": 2,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": ready,
            "availableReplicas": ready,
        },
    }


OK = {"Reconciling": ("False", "Reconciled"), "Stalled": ("False", "Healthy")}


LOAD = Load(depth={Priority.HIGH: 2, Priority.NORMAL: 5}, in_flight=3, oldest_age=4.12345)


def conditions(seen: Observation, desired: int) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in pool_conditions(seen, desired, None)}


def test_observed_fields() -> None:
    fields = observed_fields(Observation(deployment(3, 2), LOAD))
    assert fields == {
        "replicas": 3,
        "readyReplicas": 2,
        "queued": 7,
        "queueDepth": {"high": 2, "normal": 5, "low": 0},
        "inFlight": 3,
        "due": 0,
        "oldestJobAge": 4.123,
        "pausedRoutingKeys": [],
    }


def test_without_redis_the_queue_fields_are_left_alone() -> None:
    fields = observed_fields(Observation(deployment(1, 1), None))
    assert fields == {"replicas": 1, "readyReplicas": 1}


@pytest.mark.parametrize(
    ("seen", "desired", "expected"),
    [
        (
            Observation(deployment(3, 3), LOAD),
            3,
            {
                "Ready": ("True", "PodsReady"),
                **OK,
                "Scaling": ("False", "Stable"),
                "RedisReachable": ("True", "Connected"),
            },
        ),
        (
            Observation(deployment(3, 1), LOAD),
            3,
            {
                "Ready": ("False", "Scaling"),
                "Reconciling": ("True", "Scaling"),
                "Stalled": ("False", "Healthy"),
                "Scaling": ("False", "Stable"),
                "RedisReachable": ("True", "Connected"),
            },
        ),
        (
            Observation(deployment(1, 1), LOAD),
            4,
            {
                "Ready": ("True", "PodsReady"),
                **OK,
                "Scaling": ("True", "Scaling"),
                "RedisReachable": ("True", "Connected"),
            },
        ),
        (
            Observation(deployment(0, 0), LOAD),
            0,
            {
                "Ready": ("True", "ScaledToZero"),
                **OK,
                "Scaling": ("False", "Stable"),
                "RedisReachable": ("True", "Connected"),
            },
        ),
        (
            Observation(deployment(2, 2), None, ("RedisUnreachable", "refused")),
            2,
            {
                "Ready": ("True", "PodsReady"),
                **OK,
                "Scaling": ("False", "Stable"),
                "RedisReachable": ("False", "RedisUnreachable"),
            },
        ),
        (
            Observation(None, None, spec_problem="bad"),
            0,
            {
                "Ready": ("False", "InvalidSpec"),
                "Reconciling": ("False", "Stalled"),
                "Stalled": ("True", "InvalidSpec"),
                "Scaling": ("False", "Stable"),
                "RedisReachable": ("Unknown", "NotChecked"),
            },
        ),
        (
            Observation(None, LOAD),
            1,
            {
                "Ready": ("False", "DeploymentMissing"),
                "Reconciling": ("True", "DeploymentMissing"),
                "Stalled": ("False", "Healthy"),
                "Scaling": ("False", "Stable"),
                "RedisReachable": ("True", "Connected"),
            },
        ),
        (
            Observation(deployment(2, 2), LOAD, held_for_busy=2),
            2,
            {
                "Ready": ("True", "PodsReady"),
                **OK,
                "Scaling": ("True", "WaitingForBusyPods"),
                "RedisReachable": ("True", "Connected"),
            },
        ),
    ],
)
def test_conditions(seen: Observation, desired: int, expected: dict[str, Any]) -> None:
    assert conditions(seen, desired) == expected


def test_stabilizing_shows_in_scaling() -> None:
    t0 = 1000.0
    decision = decide(
        Policy(scale_down_window=300.0),
        5,
        Load(depth={Priority.NORMAL: 1}),
        t0,
        Memory(history=(Run(5, t0 - 60, t0 - 1),)),
    )
    found = {c.type: c for c in pool_conditions(Observation(deployment(5, 5), LOAD), 5, decision)}
    assert (found["Scaling"].status, found["Scaling"].reason) == ("True", "Stabilizing")


def _written(**changes: Any) -> dict[str, Any]:
    status: dict[str, Any] = {
        "replicas": 0,
        "readyReplicas": 0,
        "queued": 0,
        "queueDepth": {"high": 0, "normal": 0, "low": 0},
        "inFlight": 0,
        "due": 0,
        "oldestJobAge": None,
        "desiredReplicas": 0,
        "conditions": [{"type": "Ready", "status": "True", "reason": "ScaledToZero"}],
        "autoscaler": {
            "history": [
                {"replicas": 0, "from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:10:00Z"}
            ],
            "lastActiveTime": "2026-01-01T00:00:00Z",
        },
    }
    status.update(changes)
    return status


def test_an_idle_pool_is_not_rewritten_for_the_clock_alone() -> None:
    stored = _written()
    stored.pop("oldestJobAge")  # a merge patch of None removed it
    later = _written(
        autoscaler={
            "history": [
                {"replicas": 0, "from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:10:15Z"}
            ],
            "lastActiveTime": "2026-01-01T00:00:00Z",
        }
    )
    assert not status_changed(stored, later)


@pytest.mark.parametrize(
    "change",
    [
        {"queued": 1},
        {"desiredReplicas": 1},
        {"conditions": [{"type": "Ready", "status": "False", "reason": "Scaling"}]},
        {"autoscaler": {"history": [], "lastActiveTime": "2026-01-01T00:10:00Z"}},
    ],
)
def test_a_real_change_is_written(change: dict[str, Any]) -> None:
    assert status_changed(_written(), _written(**change))


def test_a_hand_edit_is_put_right_but_foreign_keys_do_not_force_writes() -> None:
    assert status_changed(_written(desiredReplicas=9999), _written())
    assert status_changed({"conditions": "banana"}, _written())
    junk = _written(autoscaler={**_written()["autoscaler"], "junk": [1]})
    assert not status_changed(junk, _written())  # a merge patch never removes it
    assert status_changed(None, _written())


def test_paused_and_fallback_show_in_scaling() -> None:
    paused = {
        c.type: c
        for c in pool_conditions(Observation(deployment(3, 3), LOAD, paused=True), 3, None)
    }
    assert (paused["Scaling"].status, paused["Scaling"].reason) == ("False", "Paused")
    down = Observation(deployment(2, 2), None, ("RedisUnreachable", "refused"), fallback=True)
    found = {c.type: c for c in pool_conditions(down, 2, None)}
    assert (found["Scaling"].reason, found["RedisReachable"].status) == ("Fallback", "False")


PAUSED_LOAD = Load(
    depth={Priority.NORMAL: 1},
    in_flight=2,
    paused=(PausedKey("email", (Priority.HIGH, Priority.NORMAL), 40),),
)


def test_paused_routing_keys_show_in_the_status() -> None:
    fields = observed_fields(Observation(deployment(1, 1), PAUSED_LOAD))
    assert fields["queued"] == 1
    assert fields["pausedRoutingKeys"] == [
        {"routingKey": "email", "priorities": ["high", "normal"], "waiting": 40}
    ]


def test_a_stable_pool_with_a_paused_backlog_says_so_in_scaling() -> None:
    found = {
        c.type: c for c in pool_conditions(Observation(deployment(1, 1), PAUSED_LOAD), 1, None)
    }
    scaling = found["Scaling"]
    assert (scaling.status, scaling.reason) == ("False", "QueuePaused")
    assert "40 ready job(s) on paused routing keys not counted: email (high/normal: 40)" in (
        scaling.message
    )
    # moving pods still say Scaling; nothing paused says Stable
    moving = {
        c.type: c for c in pool_conditions(Observation(deployment(2, 2), PAUSED_LOAD), 1, None)
    }
    assert moving["Scaling"].reason == "Scaling"
    assert conditions(Observation(deployment(1, 1), LOAD), 1)["Scaling"] == ("False", "Stable")


def test_a_resume_clears_the_paused_list_in_the_written_status() -> None:
    before = {**observed_fields(Observation(deployment(1, 1), PAUSED_LOAD))}
    after = observed_fields(Observation(deployment(1, 1), Load(depth={Priority.NORMAL: 41})))
    assert after["pausedRoutingKeys"] == []
    assert status_changed(before, after)

"""Scale-down spares busy pods: deletion costs from heartbeats, no shrink below busy pods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bananas.models import Priority, WorkerInfo
from bananas.operator.scaledown import (
    DELETION_COST,
    Hold,
    busy_pods,
    cost_patches,
    hold,
    pod_work,
    safe_size,
)
from bananas.operator.specs import parse_workerpool
from bananas.operator.workerpool import drain_seconds, grace_period, render_deployment

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def pod(name: str, cost: str | None = None, *, leaving: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if cost is not None:
        meta["annotations"] = {DELETION_COST: cost}
    if leaving:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta}


def beat(pod_name: str, in_flight: int, age: float = 0.0, worker: str = "") -> WorkerInfo:
    return WorkerInfo(
        id=worker or f"{pod_name}-w",
        host=pod_name,
        pid=1,
        routing_keys=["gpu"],
        priorities=[Priority.NORMAL],
        concurrency=1,
        in_flight=in_flight,
        last_seen=T0 - timedelta(seconds=age),
        pod_name=pod_name,
    )


def test_pod_work_matches_heartbeats_to_pods() -> None:
    pods = [pod("a"), pod("b"), pod("c"), pod("gone", leaving=True)]
    workers = [
        beat("a", 1),
        beat("b", 0),
        beat("gone", 3),
        beat("elsewhere", 2),  # another pool's pod in the same Redis
        WorkerInfo(id="laptop", host="x", pid=2, routing_keys=["gpu"], priorities=[], concurrency=1,
                   in_flight=5),  # not in Kubernetes at all
    ]  # fmt: skip
    assert pod_work(pods, workers) == {"a": 1, "b": 0, "c": 0}


def test_the_freshest_heartbeat_of_a_pod_wins() -> None:
    # the worker restarted inside its pod: the old record lingers until its TTL
    workers = [beat("a", 2, age=8.0, worker="old"), beat("a", 0, age=1.0, worker="new")]
    assert pod_work([pod("a")], workers) == {"a": 0}


@pytest.mark.parametrize(
    ("desired", "current", "busy", "size"),
    [
        (1, 4, 3, 3),  # three busy pods stay
        (1, 4, 0, 1),
        (0, 4, 1, 1),
        (2, 4, 4, 4),  # nothing can go
        (6, 4, 4, 6),  # scale-ups are never held
        (3, 3, 3, 3),
    ],
)
def test_safe_size(desired: int, current: int, busy: int, size: int) -> None:
    assert safe_size(desired, current, busy) == size


def test_idle_pods_cost_least() -> None:
    pods = [pod("a"), pod("b", "2"), pod("c", "0"), pod("d", "1"), pod("e", leaving=True)]
    work = {"a": 1, "b": 0, "c": 0, "d": 1}
    # a: busy, no cost yet; b: idle now; c and d: already right; e is going anyway
    assert cost_patches(pods, work) == {"a": "1", "b": "0"}
    assert busy_pods(work) == 2


def test_a_hold_ends_at_its_limit() -> None:
    first = hold(1, 4, 3, now=100.0, since=None, limit=315.0)
    assert first == Hold(size=3, busy=3, since=100.0)
    later = hold(1, 4, 3, now=400.0, since=first.since, limit=315.0)
    assert later == Hold(size=3, busy=3, since=100.0)
    expired = hold(1, 4, 3, now=415.0, since=first.since, limit=315.0)
    assert expired == Hold(size=1, busy=0, since=None)
    assert hold(1, 4, 0, now=420.0, since=None, limit=315.0) == Hold(1, 0, None)


def spec(**fields: Any) -> Any:
    return parse_workerpool({"image": "i", "app": "a", **fields})


def test_the_grace_period_covers_the_job_timeout() -> None:
    assert grace_period(spec()) == 300 + 15
    assert grace_period(spec(jobTimeout="30m")) == 1815
    assert grace_period(spec(jobTimeout="1m30s", terminationGracePeriodSeconds=200)) == 200
    # the drain the worker gets is never shorter than its jobs' timeout
    for timeout, seconds in (("5m", 300), ("30m", 1800), ("2.5s", 3)):
        assert drain_seconds(grace_period(spec(jobTimeout=timeout))) >= seconds


def test_the_progress_deadline_outlasts_a_drain(pool_body: dict[str, Any]) -> None:
    dep = render_deployment(pool_body, spec(jobTimeout="30m"), 2)
    pod_spec = dep["spec"]["template"]["spec"]
    assert pod_spec["terminationGracePeriodSeconds"] == 1815
    assert dep["spec"]["progressDeadlineSeconds"] == 1815 + 600
    env = {e["name"]: e.get("value") for e in pod_spec["containers"][0]["env"]}
    assert env["SHUTDOWN_TIMEOUT"] == "1810s"

"""The autoscaler, table-driven: (policy, replicas, load, clock, memory) -> size and reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from bananas.models import Priority, QueueStats
from bananas.operator.autoscaler import (
    MAX_HISTORY,
    Load,
    Memory,
    PausedKey,
    Policy,
    Run,
    decide,
    pool_load,
    recommend,
)
from bananas.operator.pool_status import status_changed
from bananas.operator.specs import parse_workerpool

T0 = 1_700_000_000.0


def load(queued: int = 0, in_flight: int = 0) -> Load:
    return Load(depth={Priority.NORMAL: queued}, in_flight=in_flight)


@dataclass(frozen=True)
class Case:
    name: str
    current: int
    queued: int
    in_flight: int = 0
    policy: dict[str, Any] = field(default_factory=dict)
    memory: Memory = field(default_factory=Memory)
    now: float = T0
    desired: int = 0
    reason: str | None = None


# Windows are zero unless a case is about them, so each row shows one rule.
NO_WINDOWS = {"scale_up_window": 0.0, "scale_down_window": 0.0}

CASES = [
    Case("ceil of load over target", current=1, queued=25, desired=3, reason="ScaledUp"),
    Case("in-flight jobs count", current=1, queued=5, in_flight=16, desired=3, reason="ScaledUp"),
    Case("exact multiple", current=2, queued=20, desired=2),
    Case("clamped to max", current=1, queued=1000, desired=10, reason="ScaledUp"),
    Case(
        "clamped to min",
        current=3,
        queued=0,
        policy={"min_replicas": 2},
        desired=2,
        reason="ScaledDown",
    ),
    Case("scale down when the load drops", current=5, queued=12, desired=2, reason="ScaledDown"),
    Case(
        "target per replica",
        current=1,
        queued=9,
        policy={"target_jobs_per_replica": 3},
        desired=3,
        reason="ScaledUp",
    ),
    # Activation from zero.
    Case(
        "zero stays zero below activation",
        current=0,
        queued=4,
        policy={"min_replicas": 0, "activation_jobs": 5},
        desired=0,
    ),
    Case(
        "zero wakes at activation",
        current=0,
        queued=5,
        policy={"min_replicas": 0, "activation_jobs": 5},
        desired=1,
        reason="ScaledUp",
    ),
    Case(
        "zero wakes straight to the needed size",
        current=0,
        queued=35,
        policy={"min_replicas": 0, "activation_jobs": 5},
        desired=4,
        reason="ScaledUp",
    ),
    Case(
        "activation only gates waking",
        current=1,
        queued=2,
        policy={"min_replicas": 0, "activation_jobs": 5},
        desired=1,
    ),
    Case(
        "in flight counts toward activation",
        current=0,
        queued=1,
        in_flight=4,
        policy={"min_replicas": 0, "activation_jobs": 5},
        desired=1,
        reason="ScaledUp",
    ),
    # Cooldown before zero.
    Case(
        "idle but within cooldown keeps one pod",
        current=3,
        queued=0,
        policy={"min_replicas": 0, "cooldown_seconds": 60},
        memory=Memory(last_active=T0 - 30),
        desired=1,
        reason="ScaledDown",
    ),
    Case(
        "idle past cooldown goes to zero",
        current=1,
        queued=0,
        policy={"min_replicas": 0, "cooldown_seconds": 60},
        memory=Memory(last_active=T0 - 61),
        desired=0,
        reason="ScaleToZero",
    ),
    Case(
        "past cooldown from several pods",
        current=4,
        queued=0,
        policy={"min_replicas": 0, "cooldown_seconds": 60},
        memory=Memory(last_active=T0 - 600),
        desired=0,
        reason="ScaleToZero",
    ),
    Case(
        "no memory starts the cooldown now",
        current=2,
        queued=0,
        policy={"min_replicas": 0, "cooldown_seconds": 60},
        desired=1,
        reason="ScaledDown",
    ),
    Case(
        "cooldown zero scales to zero at once",
        current=2,
        queued=0,
        policy={"min_replicas": 0, "cooldown_seconds": 0},
        desired=0,
        reason="ScaleToZero",
    ),
    Case(
        "future last-active (skew) counts as now",
        current=1,
        queued=0,
        policy={"min_replicas": 0, "cooldown_seconds": 60},
        memory=Memory(last_active=T0 + 3600),
        desired=1,
    ),
    Case(
        "min above zero never reaches zero",
        current=1,
        queued=0,
        policy={"min_replicas": 1, "cooldown_seconds": 0},
        desired=1,
    ),
    Case(
        "max zero pins the pool off",
        current=2,
        queued=100,
        policy={"min_replicas": 0, "max_replicas": 0},
        desired=0,
        reason="ScaleToZero",
    ),
    # Stabilisation windows.
    Case(
        "down window holds the highest recent recommendation",
        current=5,
        queued=10,
        policy={"scale_down_window": 300.0},
        memory=Memory(history=(Run(5, T0 - 100, T0 - 10),), last_active=T0),
        desired=5,
    ),
    Case(
        "down window expired lets it go",
        current=5,
        queued=10,
        policy={"scale_down_window": 60.0},
        memory=Memory(history=(Run(5, T0 - 300, T0 - 100),), last_active=T0),
        desired=1,
        reason="ScaledDown",
    ),
    Case(
        "down window steps down to the window's max",
        current=8,
        queued=10,
        policy={"scale_down_window": 300.0},
        memory=Memory(history=(Run(8, T0 - 900, T0 - 400), Run(4, T0 - 200, T0 - 10))),
        desired=4,
        reason="ScaledDown",
    ),
    Case(
        "up window holds the lowest recent recommendation",
        current=1,
        queued=80,
        policy={"scale_up_window": 60.0, "scale_down_window": 0.0},
        memory=Memory(history=(Run(1, T0 - 50, T0 - 5),)),
        desired=1,
    ),
    Case(
        "up window takes its min when above current",
        current=1,
        queued=80,
        policy={"scale_up_window": 60.0, "scale_down_window": 0.0},
        memory=Memory(history=(Run(3, T0 - 50, T0 - 5),)),
        desired=3,
        reason="ScaledUp",
    ),
    Case(
        "waking from zero ignores the up window",
        current=0,
        queued=80,
        policy={"min_replicas": 0, "scale_up_window": 600.0},
        memory=Memory(history=(Run(0, T0 - 500, T0 - 5),)),
        desired=1,
        reason="ScaledUp",
    ),
    Case(
        "zero after cooldown ignores the down window",
        current=3,
        queued=0,
        policy={"min_replicas": 0, "cooldown_seconds": 10, "scale_down_window": 600.0},
        memory=Memory(history=(Run(3, T0 - 500, T0 - 5),), last_active=T0 - 20),
        desired=0,
        reason="ScaleToZero",
    ),
    Case(
        "hand-scaled above max is pulled back",
        current=50,
        queued=0,
        policy={"max_replicas": 5},
        desired=1,
        reason="ScaledDown",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decide(case: Case) -> None:
    settings = {**NO_WINDOWS, **case.policy}
    policy = Policy(**settings)
    decision = decide(
        policy, case.current, load(case.queued, case.in_flight), case.now, case.memory
    )
    assert (decision.desired, decision.reason) == (case.desired, case.reason), decision.message


def test_message_carries_the_numbers() -> None:
    decision = decide(Policy(**NO_WINDOWS), 1, load(25, 3), T0, Memory())
    assert "1 -> 3 replicas" in decision.message
    assert "25 queued + 3 in flight = 28 jobs" in decision.message
    assert "10 per replica" in decision.message


def test_held_back_flag() -> None:
    policy = Policy(scale_down_window=300.0)
    memory = Memory(history=(Run(5, T0 - 100, T0 - 10),), last_active=T0)
    decision = decide(policy, 5, load(10), T0, memory)
    assert decision.recommendation == 1 and decision.desired == 5 and decision.held_back


def test_memory_remembers_activity_and_history() -> None:
    decision = decide(Policy(**NO_WINDOWS), 1, load(5), T0, Memory())
    assert decision.memory.last_active == T0
    idle = decide(Policy(**NO_WINDOWS), 1, load(0), T0 + 10, decision.memory)
    assert idle.memory.last_active == T0


def test_history_is_run_length_encoded_and_pruned() -> None:
    policy = Policy(scale_up_window=0.0, scale_down_window=30.0)
    memory = Memory()
    for step in range(100):
        memory = decide(policy, 1, load(10), T0 + step, memory).memory
    assert memory.history == (Run(1, T0, T0 + 99),)
    memory = decide(policy, 1, load(30), T0 + 200, memory).memory
    assert [r.replicas for r in memory.history] == [3]  # the old run left the window


def test_a_run_read_back_after_a_restart_goes_on_without_a_status_write() -> None:
    # The stored end of the latest run is as old as the last real change of the status.
    policy = Policy(scale_up_window=0.0, scale_down_window=30.0)
    stored = Memory(history=(Run(3, T0 - 50, T0 - 40), Run(1, T0, T0)), last_active=T0)
    status = stored.to_status()
    memory = decide(policy, 1, load(10), T0 + 1000, Memory.from_status(status, now=T0 + 1000))
    assert memory.memory.history == (Run(1, T0, T0 + 1000),)
    # The older run left the window, and the status must say so: that is one write.
    assert status_changed({"autoscaler": status}, {"autoscaler": memory.memory.to_status()})
    quiet = Memory(history=(Run(1, T0, T0),), last_active=T0).to_status()
    again = decide(policy, 1, load(0), T0 + 1000, Memory.from_status(quiet, now=T0 + 1000))
    assert not status_changed({"autoscaler": quiet}, {"autoscaler": again.memory.to_status()})
    changed = decide(policy, 1, load(30), T0 + 1015, again.memory)
    assert changed.memory.history == (Run(1, T0, T0 + 1000), Run(3, T0 + 1015, T0 + 1015))
    assert changed.desired == 3


def test_history_is_capped() -> None:
    policy = Policy(
        min_replicas=0, max_replicas=1000, scale_up_window=10_000.0, scale_down_window=10_000.0
    )
    memory = Memory()
    for step in range(MAX_HISTORY + 20):
        memory = decide(policy, 1, load(10 * (step % 50 + 1)), T0 + step, memory).memory
    assert len(memory.history) == MAX_HISTORY


def test_scale_down_then_zero_sequence() -> None:
    """A burst, then silence: up at once, down after the window, zero after the cooldown."""
    policy = Policy(min_replicas=0, max_replicas=10, cooldown_seconds=60, scale_down_window=30.0)
    memory, replicas, seen = Memory(), 0, []
    timeline = [(0, 45), (10, 45), (20, 0), (40, 0), (55, 0), (65, 0), (70, 0)]
    for at, queued in timeline:
        decision = decide(policy, replicas, load(queued), T0 + at, memory)
        memory, replicas = decision.memory, decision.desired
        seen.append((at, replicas, decision.reason))
    assert seen == [
        (0, 5, "ScaledUp"),
        (10, 5, None),
        (20, 5, None),  # recommendation 1, held by the 30 s window
        (40, 5, None),
        (55, 1, "ScaledDown"),  # the 5s left the window
        (65, 1, None),  # idle 55 s since the last job (t=10) < 60 s cooldown
        (70, 0, "ScaleToZero"),
    ]


def test_memory_round_trips_through_status() -> None:
    memory = Memory(history=(Run(2, T0 - 20, T0 - 10), Run(3, T0 - 5, T0)), last_active=T0 - 5)
    status = memory.to_status()
    assert Memory.from_status(status, now=T0) == memory


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        "nonsense",
        42,
        [],
        {"history": "nonsense", "lastActiveTime": 42},
        {"history": [{"replicas": "x"}, 7, {"replicas": -1, "from": "a", "to": "b"}]},
        {"lastActiveTime": "2999-01-01T00:00:00Z"},
        {
            "history": [
                {"replicas": 3, "from": "2999-01-01T00:00:00Z", "to": "2999-01-01T00:00:01Z"}
            ]
        },
        {
            "history": [
                {"replicas": True, "from": "2023-01-01T00:00:00Z", "to": "2023-01-01T00:00:01Z"}
            ]
        },
    ],
)
def test_nonsense_memory_reads_as_empty(garbage: Any) -> None:
    assert Memory.from_status(garbage, now=T0) == Memory()


def test_recommend_directly() -> None:
    policy = Policy(min_replicas=0, activation_jobs=3, cooldown_seconds=10)
    assert recommend(policy, 0, 2, idle_for=0) == 0
    assert recommend(policy, 0, 3, idle_for=0) == 1
    assert recommend(policy, 2, 0, idle_for=5) == 1
    assert recommend(policy, 2, 0, idle_for=10) == 0


def test_pool_load_counts_only_served_priorities() -> None:
    stats = [
        QueueStats(
            routing_key="a",
            depth={Priority.HIGH: 3, Priority.NORMAL: 4, Priority.LOW: 50},
            scheduled=9,
            in_flight=2,
            dead=1,
            oldest_age=5.0,
        ),
        QueueStats(
            routing_key="b",
            depth={Priority.HIGH: 1, Priority.NORMAL: 0, Priority.LOW: 7},
            scheduled=0,
            in_flight=1,
            dead=0,
            oldest_age=12.5,
        ),
    ]
    result = pool_load(stats, [Priority.HIGH, Priority.NORMAL])
    assert result.depth == {Priority.HIGH: 4, Priority.NORMAL: 4}
    assert (result.queued, result.in_flight, result.total) == (8, 3, 11)
    assert result.oldest_age == 12.5


def test_policy_from_spec() -> None:
    spec = parse_workerpool(
        {
            "image": "i",
            "app": "a",
            "autoscaling": {
                "minReplicas": 0,
                "maxReplicas": 7,
                "targetJobsPerReplica": 4,
                "activationJobs": 2,
                "cooldownSeconds": 30,
                "scaleUp": {"stabilizationWindowSeconds": 5},
                "scaleDown": {"stabilizationWindowSeconds": 50},
            },
        }
    )
    assert Policy.from_spec(spec.autoscaling) == Policy(
        min_replicas=0,
        max_replicas=7,
        target_jobs_per_replica=4,
        activation_jobs=2,
        cooldown_seconds=30.0,
        scale_up_window=5.0,
        scale_down_window=50.0,
    )


def test_a_pool_at_zero_wakes_for_jobs_due_within_a_poll() -> None:
    """Nothing queued, nothing running, but a delayed job or a retry falls due: only a
    worker promotes it, so the pool must wake (it stayed at zero for ever before)."""
    policy = Policy(min_replicas=0, max_replicas=4, target_jobs_per_replica=1, cooldown_seconds=60)
    stats = [
        QueueStats(routing_key="gpu", depth={}, scheduled=3, in_flight=0, dead=0, due=1),
        QueueStats(routing_key="gpu-batch", depth={}, scheduled=5, in_flight=0, dead=0, due=0),
    ]
    due = pool_load(stats, [Priority.NORMAL])
    assert (due.queued, due.due, due.total) == (0, 1, 1)
    decision = decide(policy, 0, due, 1000.0, Memory())
    assert (decision.desired, decision.reason) == (1, "ScaledUp")
    assert "0 queued + 0 in flight + 1 due = 1 jobs" in decision.message
    # jobs scheduled further out do not wake it
    later = pool_load([QueueStats(routing_key="gpu", depth={}, scheduled=3, in_flight=0, dead=0)],
                      [Priority.NORMAL])  # fmt: skip
    assert decide(policy, 0, later, 1000.0, Memory()).desired == 0


def test_jobs_due_soon_keep_a_pool_from_its_cooldown() -> None:
    policy = Policy(min_replicas=0, max_replicas=4, target_jobs_per_replica=1, cooldown_seconds=60)
    quiet = Memory(last_active=0.0)
    due = Load(due=1)
    assert decide(policy, 1, due, 1000.0, quiet).desired == 1  # no ScaleToZero
    assert decide(policy, 1, Load(), 1000.0, quiet).desired == 0


def _paused_stats() -> list[QueueStats]:
    return [
        QueueStats(
            routing_key="email",
            depth={Priority.HIGH: 30, Priority.NORMAL: 50, Priority.LOW: 7},
            scheduled=4,
            in_flight=3,
            dead=0,
            oldest_age=60.0,
            due=4,
            paused=[Priority.NORMAL, Priority.HIGH],
        ),
        QueueStats(
            routing_key="sms",
            depth={Priority.HIGH: 0, Priority.NORMAL: 6, Priority.LOW: 0},
            scheduled=0,
            in_flight=1,
            dead=0,
            oldest_age=2.0,
            due=0,
            paused=[Priority.LOW],
        ),
    ]


def test_ready_jobs_of_paused_priorities_are_left_out_of_the_load() -> None:
    """A pool serving high and normal: email has both paused (its 80 ready jobs wait,
    its due jobs and its old job are not counted), sms has only low paused, which the
    pool does not serve, so sms is not reported. In-flight jobs on email still count."""
    load = pool_load(_paused_stats(), [Priority.HIGH, Priority.NORMAL])
    assert load.depth == {Priority.HIGH: 0, Priority.NORMAL: 6}
    assert (load.queued, load.in_flight, load.due, load.total) == (6, 4, 0, 10)
    assert load.oldest_age == 2.0
    assert load.paused == (PausedKey("email", (Priority.HIGH, Priority.NORMAL), 80),)
    assert load.paused_waiting == 80


def test_a_partly_paused_key_still_counts_its_other_priorities_and_due_jobs() -> None:
    load = pool_load(_paused_stats(), [Priority.NORMAL, Priority.LOW])
    # email: normal paused (50 wait), low counted; sms: low paused (0 wait), normal counted
    assert load.depth == {Priority.NORMAL: 6, Priority.LOW: 7}
    assert load.paused == (
        PausedKey("email", (Priority.NORMAL,), 50),
        PausedKey("sms", (Priority.LOW,), 0),
    )
    assert (load.due, load.oldest_age) == (4, 60.0)


def test_a_paused_backlog_does_not_scale_up_and_a_resume_does() -> None:
    policy = Policy(min_replicas=1, max_replicas=10, target_jobs_per_replica=10)
    stats = _paused_stats()[:1]
    stats[0] = stats[0].model_copy(update={"in_flight": 0, "due": 0})
    paused = pool_load(stats, [Priority.HIGH, Priority.NORMAL])
    held = decide(policy, 1, paused, 1000.0, Memory())
    assert (held.desired, held.load, held.reason) == (1, 0, None)
    assert "(80 paused not counted)" in held.message
    resumed = pool_load(
        [stats[0].model_copy(update={"paused": []})], [Priority.HIGH, Priority.NORMAL]
    )
    up = decide(policy, 1, resumed, 1010.0, held.memory)
    assert (up.desired, up.reason) == (8, "ScaledUp")


def test_a_paused_backlog_lets_a_pool_go_to_zero_but_running_jobs_keep_it() -> None:
    policy = Policy(min_replicas=0, max_replicas=4, target_jobs_per_replica=1, cooldown_seconds=60)
    quiet = Memory(last_active=0.0)
    running = pool_load(_paused_stats()[:1], [Priority.HIGH, Priority.NORMAL])
    assert decide(policy, 2, running, 1000.0, quiet).desired == 3  # 3 in flight
    idle = _paused_stats()[0].model_copy(update={"in_flight": 0})
    waiting = pool_load([idle], [Priority.HIGH, Priority.NORMAL])
    assert decide(policy, 1, waiting, 1000.0, quiet).desired == 0
    assert decide(policy, 0, waiting, 1000.0, quiet).desired == 0  # no activation either

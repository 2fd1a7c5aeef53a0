"""What the Kubernetes page shows of a WorkerPool and a CronSchedule: pure functions."""

from __future__ import annotations

from bananas.dashboard.kube import cron_row, pool_row, tone


def test_pool_row_reads_spec_status_and_the_autoscalers_memory_newest_first() -> None:
    runs = [{"replicas": n, "from": f"t{n}", "to": f"t{n}"} for n in range(15)]
    pool = {
        "metadata": {"name": "email", "namespace": "prod"},
        "spec": {"routingKeys": ["email"], "autoscaling": {"minReplicas": 0, "maxReplicas": 4}},
        "status": {
            "replicas": 2,
            "desiredReplicas": 4,
            "conditions": [{"type": "Stalled", "status": "True", "reason": "PodsFailing"}],
            "autoscaler": {"history": runs, "changes": [{"at": "t1", "delta": -1}, "junk"]},
        },
    }
    row = pool_row(pool)
    assert (row["namespace"], row["name"], row["min_replicas"], row["max_replicas"]) == (
        "prod",
        "email",
        0,
        4,
    )
    assert (row["replicas"], row["desired_replicas"], row["ready_replicas"]) == (2, 4, None)
    assert [r["replicas"] for r in row["recommendations"]] == list(range(14, 4, -1))
    assert row["changes"] == [{"at": "t1", "delta": -1}]
    assert row["conditions"][0]["tone"] == "bad" and row["conditions"][0]["reason"] == "PodsFailing"
    bare = pool_row({"metadata": {"name": "new"}})
    assert bare["conditions"] == [] and bare["recommendations"] == [] and bare["replicas"] is None


def test_cron_row_and_condition_tones() -> None:
    row = cron_row(
        {
            "metadata": {"name": "nightly", "namespace": "prod"},
            "spec": {"schedule": "0 3 * * *", "job": "cleanup", "suspend": True},
            "status": {"runCount": 3, "active": ["j1"], "lastError": None},
        }
    )
    assert (row["schedule"], row["time_zone"], row["job"], row["suspend"]) == (
        "0 3 * * *",
        "UTC",
        "cleanup",
        True,
    )
    assert row["run_count"] == 3 and row["active"] == ["j1"]
    assert [tone("Ready", s) for s in ("True", "False", "Unknown")] == ["ok", "bad", "warn"]
    assert [tone("Stalled", s) for s in ("True", "False")] == ["bad", "ok"]
    assert [tone("Reconciling", s) for s in ("True", "False")] == ["warn", "ok"]

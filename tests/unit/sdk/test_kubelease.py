"""The Lease elector's pure parts: when to create, renew, take over or wait."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bananas.errors import ConfigError
from bananas.kubelease import (
    Action,
    KubernetesLeaseElector,
    LeaseRecord,
    format_micro_time,
    lease_body,
    plan,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def record(holder: str | None, renewed_ago: float | None, duration: float = 15) -> LeaseRecord:
    renew = NOW - timedelta(seconds=renewed_ago) if renewed_ago is not None else None
    return LeaseRecord(
        holder=holder, renew_time=renew, duration=duration, transitions=4, resource_version="77"
    )


@pytest.mark.parametrize(
    ("lease", "action"),
    [
        (None, Action.CREATE),
        (record("me", 5), Action.RENEW),
        (record("me", 14.9), Action.RENEW),
        (record("me", 16), Action.ACQUIRE),  # our own lapsed lease: a new term, a new token
        (record("other", 5), Action.WAIT),
        (record("other", 15), Action.WAIT),  # exactly at the edge: not yet expired
        (record("other", 15.001), Action.ACQUIRE),
        (record(None, 1), Action.ACQUIRE),  # released
        (record("", 1), Action.ACQUIRE),
        (record("other", None), Action.ACQUIRE),  # never renewed
        (LeaseRecord("other", NOW, None, 1), Action.ACQUIRE),  # no duration
    ],
)
def test_plan(lease: LeaseRecord | None, action: Action) -> None:
    assert plan(lease, "me", NOW) is action


def test_lease_body_holds() -> None:
    body = lease_body(
        "sched", "pod-a", 15, NOW, transitions=5, acquire_time=NOW, resource_version="77"
    )
    assert body["metadata"] == {"name": "sched", "resourceVersion": "77"}
    assert body["spec"] == {
        "holderIdentity": "pod-a",
        "leaseDurationSeconds": 15,
        "leaseTransitions": 5,
        "renewTime": "2024-05-01T12:00:00.000000Z",
        "acquireTime": "2024-05-01T12:00:00.000000Z",
    }


def test_lease_body_release_clears_the_holder() -> None:
    body = lease_body("sched", None, 15, NOW, transitions=5, acquire_time=None)
    assert body["spec"]["holderIdentity"] is None
    assert body["spec"]["renewTime"] is None
    assert body["spec"]["leaseTransitions"] == 5  # the token never goes back


def test_micro_time_always_has_six_digits() -> None:
    assert format_micro_time(NOW.replace(microsecond=5)) == "2024-05-01T12:00:00.000005Z"
    assert format_micro_time(NOW) == "2024-05-01T12:00:00.000000Z"


def test_identity_is_required() -> None:
    with pytest.raises(ConfigError):
        KubernetesLeaseElector("ns", "lease", "")


def test_lease_duration_is_whole_seconds_at_least_one() -> None:
    elector = KubernetesLeaseElector("ns", "lease", "me", 0.3)
    assert elector.lease_duration == 0.3
    assert elector._duration_seconds == 1


async def test_without_credentials_it_does_not_raise(tmp_path: object) -> None:
    elector = KubernetesLeaseElector("ns", "lease", "me", kubeconfig="/nonexistent/kubeconfig")
    assert await elector.acquire_or_renew() is None
    await elector.release()
    await elector.close()

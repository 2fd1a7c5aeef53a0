"""The scheduler Deployment the operator runs per namespace and Redis."""

from __future__ import annotations

from typing import Any

import pytest

from bananas.operator.config import SchedulerSettings
from bananas.operator.scheduler_deployment import field_manager, render_scheduler, scheduler_name
from bananas.operator.specs import RedisRef


def ref(secret: str = "bananas-redis", key: str = "url") -> RedisRef:
    return RedisRef.model_validate({"secretName": secret, "key": key})


@pytest.mark.parametrize(
    ("secret", "key", "name"),
    [
        ("bananas-redis", "url", "bananas-scheduler"),
        ("queue", "url", "bananas-scheduler-queue"),
        ("queue", "uri", "bananas-scheduler-queue-uri"),
        ("Queue.Main", "url", "bananas-scheduler-queue-main"),
    ],
)
def test_names(secret: str, key: str, name: str) -> None:
    assert scheduler_name(ref(secret, key)) == name


def test_long_names_are_shortened_with_a_hash() -> None:
    long_a, long_b = ref("a" * 80), ref("a" * 79 + "b")
    assert len(scheduler_name(long_a)) <= 63
    assert scheduler_name(long_a) != scheduler_name(long_b)


def test_render(cron_body: dict[str, Any]) -> None:
    settings = SchedulerSettings(image="bananas:test", replicas=2)
    sa, binding, pdb, deployment = render_scheduler("ops", ref(), cron_body, settings)
    assert [o["kind"] for o in (sa, binding, deployment, pdb)] == [
        "ServiceAccount",
        "RoleBinding",
        "Deployment",
        "PodDisruptionBudget",
    ]
    for obj in (sa, binding, deployment, pdb):
        assert obj["metadata"]["name"] == "bananas-scheduler"
        assert obj["metadata"]["namespace"] == "ops"
        owner = obj["metadata"]["ownerReferences"][0]
        assert owner["uid"] == "uid-nightly-cleanup" and owner["controller"] is False
        assert obj["metadata"]["labels"]["app.kubernetes.io/component"] == "scheduler"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "bananas-scheduler",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "bananas-scheduler", "namespace": "ops"}
    ]
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "bananas-scheduler"
    container = pod["containers"][0]
    assert container["command"] == ["bananas"]
    assert container["args"] == ["scheduler", "--leader-election", "kubernetes"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["LEADER_ELECTION"] == "kubernetes"
    assert env["LEADER_LEASE_NAME"] == "bananas-scheduler"
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["REDIS_URL"] == {"secretKeyRef": {"name": "bananas-redis", "key": "url"}}


def test_each_owner_has_its_own_field_manager(cron_body: dict[str, Any]) -> None:
    other = {**cron_body, "metadata": {**cron_body["metadata"], "uid": "uid-2"}}
    assert field_manager(cron_body) != field_manager(other)
    assert len(field_manager(cron_body)) <= 128


def test_scheduler_app_is_passed_only_when_set(cron_body: dict[str, Any]) -> None:
    def env(settings: SchedulerSettings) -> dict[str, Any]:
        deployment = render_scheduler("ops", ref(), cron_body, settings)[-1]
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        return {e["name"]: e.get("value") for e in container["env"]}

    assert "BANANAS_APP" not in env(SchedulerSettings())
    assert env(SchedulerSettings(app="shop.tasks"))["BANANAS_APP"] == "shop.tasks"

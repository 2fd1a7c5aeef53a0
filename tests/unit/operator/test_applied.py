"""The digest that lets a resumed operator skip a group of objects already applied."""

from __future__ import annotations

import copy
from typing import Any

from bananas.operator.applied import DIGEST_ANNOTATION, digest, stamped, up_to_date


def _object(kind: str, owner_uid: str = "uid-a", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {
            "name": "sched",
            "namespace": "ops",
            "labels": {"app": "x"},
            "ownerReferences": [{"kind": "CronSchedule", "name": owner_uid, "uid": owner_uid}],
        },
        "spec": {"replicas": 1, **spec},
    }


def _group(owner_uid: str = "uid-a", **spec: Any) -> list[dict[str, Any]]:
    return [_object("PodDisruptionBudget", owner_uid), _object("Deployment", owner_uid, **spec)]


def _stored(group: list[dict[str, Any]], *owner_uids: str) -> dict[str, Any]:
    """The group's Deployment as the API would hand it back after the apply."""
    stored = stamped(group[-1], digest(group))
    stored["metadata"]["ownerReferences"] = [{"uid": uid} for uid in owner_uids]
    stored["metadata"]["resourceVersion"] = "42"
    stored["status"] = {"replicas": 1}
    return stored


def test_the_digest_ignores_owner_references_and_sees_every_other_field() -> None:
    assert digest(_group("uid-a")) == digest(_group("uid-b"))
    assert digest(_group()) != digest(_group(replicas=2))
    assert digest(_group()) != digest(_group(image="b:2"))
    assert digest(_group()) != digest(_group()[1:])  # the budget counts too
    budget_changed = _group()
    budget_changed[0]["spec"]["maxUnavailable"] = 2
    assert digest(budget_changed) != digest(_group())


def test_the_digest_does_not_depend_on_key_order() -> None:
    group = _group()
    reordered = copy.deepcopy(group)
    reordered[1]["spec"] = dict(reversed(list(reordered[1]["spec"].items())))
    assert digest(reordered) == digest(group)


def test_stamped_keeps_the_other_annotations_and_leaves_the_input_alone() -> None:
    deployment = _object("Deployment")
    deployment["metadata"]["annotations"] = {"bananas.dev/generation": "3"}
    out = stamped(deployment, "abc")
    assert out["metadata"]["annotations"] == {
        "bananas.dev/generation": "3",
        DIGEST_ANNOTATION: "abc",
    }
    assert DIGEST_ANNOTATION not in deployment["metadata"]["annotations"]


def test_up_to_date_needs_the_same_digest_and_every_owner() -> None:
    group = _group("uid-a")
    value = digest(group)
    assert up_to_date(_stored(group, "uid-a"), group[-1], value)
    assert up_to_date(_stored(group, "uid-a", "uid-b"), group[-1], value)  # shared
    assert not up_to_date(None, group[-1], value)
    assert not up_to_date(_stored(group, "uid-b"), group[-1], value)  # not ours yet
    changed = _group("uid-a", replicas=3)
    assert not up_to_date(_stored(group, "uid-a"), changed[-1], digest(changed))
    unstamped = dict(_stored(group, "uid-a"))
    unstamped["metadata"] = {**unstamped["metadata"], "annotations": {}}
    assert not up_to_date(unstamped, group[-1], value)

"""Names, labels and owner references shared by everything the operator writes.

Every object the operator creates carries the recommended ``app.kubernetes.io/*``
labels, so ``kubectl get all -l app.kubernetes.io/managed-by=bananas-operator``
finds all of it, plus an owner reference to the custom resource it was made
for, so that deleting the resource lets Kubernetes' garbage collector remove
its children. The selector labels are a fixed subset: a Deployment's selector
is immutable, so it must never contain a label whose value could change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

GROUP: Final = "bananas.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"

WORKERPOOL_KIND: Final = "WorkerPool"
WORKERPOOL_PLURAL: Final = "workerpools"
CRONSCHEDULE_KIND: Final = "CronSchedule"
CRONSCHEDULE_PLURAL: Final = "cronschedules"

#: Value of ``app.kubernetes.io/managed-by`` and the server-side-apply field manager.
MANAGER: Final = "bananas-operator"
PART_OF: Final = "bananas"

#: Finalizer that keeps a CronSchedule until its schedule left Redis.
FINALIZER: Final = f"{GROUP}/finalizer"
#: Prefix of the annotations kopf keeps its own progress and diff base in.
ANNOTATION_PREFIX: Final = GROUP
#: Label naming the WorkerPool a worker pod belongs to (handy for ``kubectl logs -l``).
POOL_LABEL: Final = f"{GROUP}/workerpool"

#: Annotation on a Deployment: the generation of the resource it was rendered from.
GENERATION_ANNOTATION: Final = f"{GROUP}/generation"

COMPONENT_WORKER: Final = "worker"
COMPONENT_SCHEDULER: Final = "scheduler"

JsonObject = dict[str, Any]


def selector_labels(name: str, instance: str, component: str) -> dict[str, str]:
    """The immutable labels a Deployment selects its pods by."""
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": component,
    }


def labels(name: str, instance: str, component: str) -> dict[str, str]:
    """The full set of recommended labels for an object the operator writes."""
    return {
        **selector_labels(name, instance, component),
        "app.kubernetes.io/managed-by": MANAGER,
        "app.kubernetes.io/part-of": PART_OF,
    }


def owner_reference(owner: Mapping[str, Any], *, controller: bool = True) -> JsonObject:
    """An owner reference to ``owner`` (a resource body with apiVersion, kind and metadata).

    ``controller=True`` marks the one owner that manages the child; a child shared by
    several owners (the scheduler of a namespace) gets plain references from each.
    Returns a JSON object for ``metadata.ownerReferences``; raises ``KeyError`` if the
    body lacks a name or uid.
    """
    meta = owner["metadata"]
    return {
        "apiVersion": owner.get("apiVersion", API_VERSION),
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def owner_of(body: Mapping[str, Any]) -> JsonObject:
    """The identifying part of a resource body (and its generation), for owner references
    and rendering."""
    meta = body["metadata"]
    owner: JsonObject = {
        "apiVersion": body["apiVersion"],
        "kind": body["kind"],
        "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"]},
    }
    generation = meta.get("generation")
    if isinstance(generation, int):
        owner["metadata"]["generation"] = generation
    return owner

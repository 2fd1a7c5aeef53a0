"""Applying a group of objects only when what it would write differs from what is there.

Every WorkerPool and CronSchedule is reconciled again whenever kopf starts: at an
operator restart, and at every failover of the elected operator. At 1,000 pools and
1,000 schedules that was some 6,000 server-side applies (a pool's Deployment and
PodDisruptionBudget, a schedule's ServiceAccount, RoleBinding, Deployment and
budget) at once, and the new leader's autoscalers waited behind them for minutes.

So the objects a resource owns are applied as a group whose last member is a
Deployment (which the operator keeps in memory from a watch,
:mod:`~bananas.operator.deployment_cache`). The Deployment carries, in the
:data:`DIGEST_ANNOTATION`, a digest of the whole group as rendered. When the
Deployment in memory carries the digest of the group about to be applied, and an
owner reference to every owner the group names, the group is already there as
rendered and nothing is sent. The Deployment goes last so that its digest is
written only after every other member was applied.

Owner references are left out of the digest: a scheduler's objects are shared by
every CronSchedule of a namespace and a Redis, each applying them with its own
reference (and field manager), and all of them must find the same digest. What
this does not notice is a hand edit of an object that leaves the annotation alone,
or a hand-deleted budget, ServiceAccount or RoleBinding: the next change of what is
rendered (an edit of the resource, a new size) applies the whole group again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

from bananas.operator.meta import GROUP, JsonObject

#: Annotation on a Deployment: the digest of the group of objects it was applied with.
DIGEST_ANNOTATION: Final = f"{GROUP}/applied-digest"


def _without_owners(obj: Mapping[str, Any]) -> JsonObject:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "ownerReferences"}
    return {**obj, "metadata": meta}


def digest(group: Sequence[Mapping[str, Any]]) -> str:
    """A digest of ``group`` as rendered, owner references left out."""
    text = orjson.dumps([_without_owners(obj) for obj in group], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(text).hexdigest()[:32]


def stamped(deployment: Mapping[str, Any], value: str) -> JsonObject:
    """``deployment`` with :data:`DIGEST_ANNOTATION` set to ``value``."""
    meta = dict(deployment.get("metadata") or {})
    meta["annotations"] = {**(meta.get("annotations") or {}), DIGEST_ANNOTATION: value}
    return {**deployment, "metadata": meta}


def _owner_uids(obj: Mapping[str, Any]) -> set[str]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return {str(ref.get("uid")) for ref in refs if isinstance(ref, Mapping)}


def up_to_date(stored: Mapping[str, Any] | None, rendered: Mapping[str, Any], value: str) -> bool:
    """True when ``stored`` (a Deployment as the cache holds it) was applied with the
    group of digest ``value`` and already names every owner ``rendered`` names."""
    if stored is None:
        return False
    annotations = (stored.get("metadata") or {}).get("annotations") or {}
    if annotations.get(DIGEST_ANNOTATION) != value:
        return False
    return _owner_uids(rendered) <= _owner_uids(stored)

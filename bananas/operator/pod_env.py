"""Environment entries of the pods the operator runs, named by :mod:`bananas.config`'s table.

A worker or scheduler pod is configured the way any Bananas process is: by
the environment :meth:`bananas.config.Settings.from_env` reads. The variable
names belong to that table (``bananas.config.ENV_VARS``), so the operator
renders them from the ``Settings`` field they set and never spells one as a
literal: renaming a variable there renames it in every pod, and a unit test
checks that every variable the operator sets is one the process reads.

Plain values go through :func:`bananas.config.render_env`; the two other
shapes a pod needs are here: a value from a Secret key (the Redis URL) and a
value from the pod's own metadata (its name and namespace, the Downward API).
"""

from __future__ import annotations

from bananas.config import env_var
from bananas.operator.meta import JsonObject
from bananas.operator.specs import RedisRef


def from_secret(field: str, ref: RedisRef) -> JsonObject:
    """An entry setting the settings field ``field`` from the Secret key ``ref`` names."""
    return {
        "name": env_var(field),
        "valueFrom": {"secretKeyRef": {"name": ref.secret_name, "key": ref.key}},
    }


def from_pod(field: str, path: str) -> JsonObject:
    """An entry setting ``field`` from the pod's own ``path`` (e.g. ``metadata.name``)."""
    return {"name": env_var(field), "valueFrom": {"fieldRef": {"fieldPath": path}}}


def pod_identity() -> list[JsonObject]:
    """POD_NAME and POD_NAMESPACE from the Downward API: who the process runs as."""
    return [from_pod("pod_name", "metadata.name"), from_pod("pod_namespace", "metadata.namespace")]

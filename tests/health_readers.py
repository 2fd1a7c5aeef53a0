"""How GitOps tools read a resource's health: kstatus, the Argo CD Lua check, Flux's CEL.

- :func:`kstatus`: kstatus' verdict, reimplemented (below).
- :func:`argocd_health`: the shipped Argo CD health script
  (``manifests/gitops/health.lua``) run in Lua 5.1, the dialect Argo CD's
  gopher-lua speaks (``lupa.lua51``).
- :func:`flux_health`: the shipped Flux ``healthCheckExprs``
  (``manifests/gitops/flux-kustomization.yaml``) evaluated with a CEL
  implementation, in the order Flux applies them (inProgress, failed, current).

kstatus' rules:

kstatus (sigs.k8s.io/cli-utils/pkg/kstatus, what Flux's health checks run)
judges a resource of a kind it has no special rules for by its generic
properties, in this order:

1. ``metadata.deletionTimestamp`` set: ``Terminating``.
2. ``status.observedGeneration`` present and different from
   ``metadata.generation``: ``InProgress``.
3. a ``Reconciling`` condition with status True: ``InProgress``.
4. a ``Stalled`` condition with status True: ``Failed``.
5. otherwise ``Current``.

The tests check that the operator's statuses read right under these rules, and
that the Argo CD Lua health check and the Flux expressions agree with them.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import cel
import yaml
from lupa import lua51

GITOPS = Path(__file__).resolve().parent.parent / "manifests" / "gitops"
LUA = GITOPS / "health.lua"
FLUX = GITOPS / "flux-kustomization.yaml"

TERMINATING = "Terminating"
IN_PROGRESS = "InProgress"
FAILED = "Failed"
CURRENT = "Current"


def _true(conditions: Any, kind: str) -> bool:
    if not isinstance(conditions, list):
        return False
    return any(
        isinstance(c, Mapping) and c.get("type") == kind and c.get("status") == "True"
        for c in conditions
    )


def kstatus(obj: Mapping[str, Any]) -> str:
    """kstatus' status of ``obj`` (a resource as stored) by the generic rules above."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    if meta.get("deletionTimestamp"):
        return TERMINATING
    observed = status.get("observedGeneration")
    if observed is not None and observed != meta.get("generation"):
        return IN_PROGRESS
    conditions = status.get("conditions")
    if _true(conditions, "Reconciling"):
        return IN_PROGRESS
    if _true(conditions, "Stalled"):
        return FAILED
    return CURRENT


def _to_lua(runtime: Any, value: Any) -> Any:
    if isinstance(value, Mapping):
        return runtime.table_from({k: _to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([_to_lua(runtime, v) for v in value])
    return value


def argocd_health(obj: Mapping[str, Any], script: str | None = None) -> tuple[str, str]:
    """(status, message) the Argo CD health script gives ``obj``."""
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = _to_lua(runtime, obj)
    source = script if script is not None else LUA.read_text()
    result = runtime.execute(source)
    return str(result["status"]), str(result["message"] or "")


@cache
def _flux_checks() -> dict[str, dict[str, str]]:
    spec = yaml.safe_load(FLUX.read_text())["spec"]
    return {check["kind"]: check for check in spec["healthCheckExprs"]}


def flux_health(obj: Mapping[str, Any]) -> str:
    """``InProgress``, ``Failed``, ``Current`` or ``Unknown`` by the shipped Flux expressions."""
    check = _flux_checks()[str(obj["kind"])]
    context = {"metadata": obj.get("metadata") or {}, "status": obj.get("status") or {}}
    for verdict, key in ((IN_PROGRESS, "inProgress"), (FAILED, "failed"), (CURRENT, "current")):
        if cel.evaluate(check[key], context) is True:
            return verdict
    return "Unknown"

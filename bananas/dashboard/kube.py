"""The Kubernetes page: WorkerPools and CronSchedules as the API server holds them.

The dashboard reads them with whatever credentials :mod:`bananas.kubeconfig` finds (a
kubeconfig named in the settings, the pod's ServiceAccount, the default kubeconfig)
and never writes. Everything shown comes from the objects themselves: spec, the
conditions, replica counts and queue numbers the operator writes to their status, and
the autoscaler's memory (``status.autoscaler``: the recommendations of its recent
polls and the size changes it made), so the page needs no access to the operator.

Without access the page is hidden behind a sentence that says why (no credentials,
no ``operator`` extra, the CRDs missing, a 403 naming the missing permission, the API
server unreachable); nothing else in the dashboard depends on it. The Kubernetes
client is imported only when the page is first opened, and its answer is kept for
:data:`CACHE_SECONDS` so that many open pages cost one list call per kind and
namespace per interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from bananas.dashboard.settings import DashboardSettings
from bananas.errors import ConfigError
from bananas.kubeconfig import load_kube_configuration
from bananas.operator.meta import CRONSCHEDULE_PLURAL, GROUP, VERSION, WORKERPOOL_PLURAL

log = logging.getLogger(__name__)

#: Seconds one read of the API server is reused for.
CACHE_SECONDS = 10.0
#: Seconds before credentials that could not be loaded are looked for again.
RETRY_SECONDS = 60.0
#: Seconds one list call may take.
LIST_TIMEOUT = 10.0
#: Autoscaler recommendations and size changes shown per pool (newest first).
DECISIONS_SHOWN = 10


def _get(obj: Any, *path: str) -> Any:
    for name in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(name)
    return obj


#: Conditions that are bad news when True (kstatus' abnormal-true polarity), and those
#: that say work is under way; every other condition is good news when True.
_BAD_WHEN_TRUE = frozenset({"Stalled"})
_BUSY_WHEN_TRUE = frozenset({"Reconciling", "Scaling"})


def tone(kind: str, status: str) -> str:
    """``ok``, ``warn`` or ``bad``: how a condition's badge is coloured."""
    if status == "Unknown":
        return "warn"
    true = status == "True"
    if kind in _BAD_WHEN_TRUE:
        return "bad" if true else "ok"
    if kind in _BUSY_WHEN_TRUE:
        return "warn" if true else "ok"
    return "ok" if true else "bad"


def conditions(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The object's ``status.conditions``, each with type, status, reason, message, since
    and its badge's tone."""
    out = []
    for c in _get(obj, "status", "conditions") or []:
        if isinstance(c, Mapping):
            kind, status = str(c.get("type", "")), str(c.get("status", "Unknown"))
            out.append(
                {
                    "type": kind,
                    "status": status,
                    "tone": tone(kind, status),
                    "reason": str(c.get("reason") or ""),
                    "message": str(c.get("message") or ""),
                    "since": c.get("lastTransitionTime"),
                }
            )
    return out


def pool_row(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What the page shows of one WorkerPool."""
    status = _get(obj, "status") or {}
    memory = _get(status, "autoscaler") or {}
    runs = [r for r in memory.get("history") or [] if isinstance(r, Mapping)]
    changes = [c for c in memory.get("changes") or [] if isinstance(c, Mapping)]
    return {
        "namespace": _get(obj, "metadata", "namespace") or "",
        "name": _get(obj, "metadata", "name") or "",
        "routing_keys": list(_get(obj, "spec", "routingKeys") or []),
        "min_replicas": _get(obj, "spec", "autoscaling", "minReplicas"),
        "max_replicas": _get(obj, "spec", "autoscaling", "maxReplicas"),
        "replicas": status.get("replicas"),
        "ready_replicas": status.get("readyReplicas"),
        "desired_replicas": status.get("desiredReplicas"),
        "queued": status.get("queued"),
        "in_flight": status.get("inFlight"),
        "oldest_job_age": status.get("oldestJobAge"),
        "last_scale_time": status.get("lastScaleTime"),
        "last_active_time": memory.get("lastActiveTime"),
        "conditions": conditions(obj),
        # Each run: polls in a row that recommended the same size (newest first).
        "recommendations": [
            {"replicas": r.get("replicas"), "from": r.get("from"), "to": r.get("to")}
            for r in reversed(runs[-DECISIONS_SHOWN:])
        ],
        "changes": [
            {"at": c.get("at"), "delta": c.get("delta")}
            for c in reversed(changes[-DECISIONS_SHOWN:])
        ],
    }


def cron_row(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What the page shows of one CronSchedule."""
    status = _get(obj, "status") or {}
    return {
        "namespace": _get(obj, "metadata", "namespace") or "",
        "name": _get(obj, "metadata", "name") or "",
        "schedule": _get(obj, "spec", "schedule") or "",
        "time_zone": _get(obj, "spec", "timeZone") or "UTC",
        "job": _get(obj, "spec", "job", "name") or _get(obj, "spec", "job") or "",
        "suspend": bool(_get(obj, "spec", "suspend")),
        "schedule_id": status.get("scheduleId"),
        "last_schedule_time": status.get("lastScheduleTime"),
        "last_successful_time": status.get("lastSuccessfulTime"),
        "next_schedule_time": status.get("nextScheduleTime"),
        "active": list(status.get("active") or []),
        "run_count": status.get("runCount"),
        "skipped_count": status.get("skippedCount"),
        "last_error": status.get("lastError"),
        "conditions": conditions(obj),
    }


def _problem(exc: BaseException) -> str:
    """A sentence for a failed list call."""
    status = getattr(exc, "status", None)
    if status in (401, 403):
        reason = getattr(exc, "reason", "") or "Forbidden"
        return (
            f"The dashboard's credentials may not list WorkerPools and CronSchedules "
            f"({status} {reason}): grant get/list on {WORKERPOOL_PLURAL}.{GROUP} and "
            f"{CRONSCHEDULE_PLURAL}.{GROUP} (the Helm chart's dashboard.kubernetes RBAC)."
        )
    if status == 404:
        return (
            f"The API server does not serve {GROUP}/{VERSION}: the WorkerPool and "
            "CronSchedule CRDs are not installed."
        )
    if isinstance(exc, TimeoutError):
        return f"The API server did not answer within {LIST_TIMEOUT:.0f} s."
    return f"The API server could not be read: {type(exc).__name__}: {exc}"


class KubeReader:
    """Lists WorkerPools and CronSchedules for the Kubernetes page (see the module
    docstring); one per dashboard."""

    def __init__(self, settings: DashboardSettings, *, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.clock = clock
        self._api: Any = None
        self._failed_at: float | None = None
        self._failure = ""
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    async def _client(self) -> Any:
        """The ApiClient, or None (with ``_failure`` saying why) when none can be had."""
        if self._api is not None:
            return self._api
        if self._failed_at is not None and self.clock() - self._failed_at < RETRY_SECONDS:
            return None
        try:
            configuration = await load_kube_configuration(self.settings.kubeconfig)
            from kubernetes_asyncio import client as k8s

            self._api = k8s.ApiClient(configuration)
        except ConfigError as exc:
            self._fail(f"No Kubernetes credentials: {exc}")
        except Exception as exc:  # the client's own errors: a malformed kubeconfig, ...
            self._fail(f"No Kubernetes credentials: {type(exc).__name__}: {exc}")
        return self._api

    def _fail(self, why: str) -> None:
        self._failed_at = self.clock()
        self._failure = why
        log.info("dashboard: the Kubernetes page is hidden: %s", why)

    async def view(self) -> dict[str, Any]:
        """``{"available": True, "pools": [...], "crons": [...], "namespaces": [...]}``,
        or ``{"available": False, "reason": "..."}``."""
        if not self.settings.kubernetes:
            return {"available": False, "reason": "The Kubernetes page is turned off."}
        async with self._lock:
            now = self.clock()
            if self._cached is not None and now - self._cached[0] < CACHE_SECONDS:
                return self._cached[1]
            api = await self._client()
            if api is None:
                return {"available": False, "reason": self._failure}
            try:
                pools = await self._list(api, WORKERPOOL_PLURAL)
                crons = await self._list(api, CRONSCHEDULE_PLURAL)
            except Exception as exc:  # every failure becomes the page's sentence
                view: dict[str, Any] = {"available": False, "reason": _problem(exc)}
            else:
                view = {
                    "available": True,
                    "namespaces": list(self.settings.kube_namespaces),
                    "pools": [pool_row(p) for p in pools],
                    "crons": [cron_row(c) for c in crons],
                }
            self._cached = (now, view)
            return view

    async def _list(self, api: Any, plural: str) -> list[Mapping[str, Any]]:
        from kubernetes_asyncio import client as k8s

        custom = k8s.CustomObjectsApi(api)
        items: list[Mapping[str, Any]] = []
        for ns in self.settings.kube_namespaces or (None,):
            if ns is None:
                call = custom.list_cluster_custom_object(GROUP, VERSION, plural)
            else:
                call = custom.list_namespaced_custom_object(GROUP, VERSION, ns, plural)
            reply = await asyncio.wait_for(call, LIST_TIMEOUT)
            items += [i for i in reply.get("items", []) if isinstance(i, Mapping)]
        items.sort(key=lambda o: (_get(o, "metadata", "namespace"), _get(o, "metadata", "name")))
        return items

    async def close(self) -> None:
        """Close the API client, if one was opened."""
        if self._api is not None:
            await self._api.close()
            self._api = None

"""The operator against a real API server and a real Redis: CronSchedules.

A CronSchedule must end up registered in Redis, with the namespace's scheduler
Deployment (and its ServiceAccount and RoleBinding) applied; the status must
follow what the scheduler does. The scheduler here is the real one
(``bananas.worker_runtime.scheduler.CronScheduler``), electing its leader with
a real Lease through ``KubernetesLeaseElector``; its clock is moved forward
instead of waiting a minute for the next slot.
"""

# Fixtures are shared by importing them from sibling modules (the e2e conftest
# belongs to the harness), which ruff reads as unused imports and redefinitions.
# ruff: noqa: F401, F811

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from bananas import AsyncClient
from bananas.operator.testing import OperatorThread, eventually, wait_for_event
from bananas.operator.timefmt import parse_time
from bananas.worker_runtime.leader_kubernetes import KubernetesLeaseElector
from bananas.worker_runtime.scheduler import CronScheduler

from .controlplane import KubeCluster
from .redis_fixture import operator_redis
from .test_operator_workerpool import (
    GROUP,
    VERSION,
    crds,
    operator,
    put_secret,
    redis,
    redis_secret,
    route,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

CRONS = "cronschedules"
#: kube-controller-manager's garbage collector only watches a CRD's kind after its
#: periodic discovery resync (every 30 s), so in a fresh control plane the first
#: owner deletions of a session take up to that long to cascade.
GC_TIMEOUT = 120.0


class Crons:
    """CronSchedules in one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api)

    async def create(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "CronSchedule",
            "metadata": {"name": name},
            "spec": spec,
        }
        result: dict[str, Any] = await self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, CRONS, body
        )
        return result

    async def get(self, name: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, CRONS, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return result

    async def status(self, name: str) -> dict[str, Any]:
        return ((await self.get(name)) or {}).get("status") or {}

    async def condition(
        self, name: str, kind: str, status: str, reason: str | None = None
    ) -> dict[str, Any] | None:
        for cond in (await self.status(name)).get("conditions") or []:
            if (
                cond.get("type") == kind
                and cond.get("status") == status
                and (reason is None or cond.get("reason") == reason)
            ):
                return dict(cond)
        return None


@pytest.fixture
def crons(kube_api: client.ApiClient, namespace: str) -> Crons:
    return Crons(kube_api, namespace)


async def registered(redis: AsyncClient, schedule_id: str) -> Any:
    for schedule in await redis.schedules():
        if schedule.id == schedule_id:
            return schedule
    return None


async def test_cronschedule_is_registered_with_a_scheduler(
    operator: OperatorThread,
    crons: Crons,
    redis: AsyncClient,
    namespace: str,
    kube_api: client.ApiClient,
) -> None:
    key = route()
    cron = await crons.create(
        "nightly",
        {
            "schedule": "0 3 * * *",
            "timeZone": "Europe/Berlin",
            "job": "cleanup",
            "payload": {"days": 30},
            "priority": "low",
            "routingKey": key,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "maxRetries": 2,
        },
    )
    sid = f"{namespace}.nightly"
    schedule = await eventually(lambda: registered(redis, sid), what="the schedule in Redis")
    assert (schedule.cron, schedule.timezone, schedule.job) == (
        "0 3 * * *",
        "Europe/Berlin",
        "cleanup",
    )
    assert schedule.payload == {"days": 30}
    assert (schedule.priority.value, schedule.routing_key) == ("low", key)
    assert schedule.concurrency_policy.value == "Forbid"
    assert schedule.starting_deadline_seconds == 600
    assert schedule.enabled is True

    await eventually(
        lambda: crons.condition("nightly", "Registered", "True"), what="Registered=True"
    )
    status = await crons.status("nightly")
    assert status["scheduleId"] == sid
    assert status["nextScheduleTime"].endswith(":00:00Z")
    await wait_for_event(kube_api, namespace, "nightly", "Registered")

    # The scheduler of the namespace: two replicas, a Lease-based election, least privilege.
    uid = cron["metadata"]["uid"]
    dep = await client.AppsV1Api(kube_api).read_namespaced_deployment(
        "bananas-scheduler", namespace
    )
    assert dep.spec.replicas == 2
    container = dep.spec.template.spec.containers[0]
    assert container.args == ["scheduler", "--leader-election", "kubernetes"]
    assert dep.spec.template.spec.service_account_name == "bananas-scheduler"
    assert any(ref.uid == uid for ref in dep.metadata.owner_references)
    binding = await client.RbacAuthorizationV1Api(kube_api).read_namespaced_role_binding(
        "bananas-scheduler", namespace
    )
    assert binding.role_ref.name == "bananas-scheduler"
    await client.CoreV1Api(kube_api).read_namespaced_service_account("bananas-scheduler", namespace)

    # Suspend is carried over to Redis.
    await crons.custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        CRONS,
        "nightly",
        {"spec": {"suspend": True}},
        _content_type="application/merge-patch+json",
    )

    async def suspended() -> bool:
        found = await registered(redis, sid)
        return found is not None and found.enabled is False

    await eventually(suspended, what="enabled=False in Redis")


async def test_status_follows_the_fires_of_a_real_scheduler(
    operator: OperatorThread,
    crons: Crons,
    redis: AsyncClient,
    namespace: str,
    kube_cluster_with_controllers: KubeCluster,
    kube_api: client.ApiClient,
) -> None:
    key = route()
    await crons.create("every-minute", {"schedule": "* * * * *", "job": "tick", "routingKey": key})
    sid = f"{namespace}.every-minute"
    await eventually(lambda: registered(redis, sid), what="the schedule in Redis")

    offset = 0.0
    elector = KubernetesLeaseElector(
        namespace,
        "bananas-scheduler",
        "e2e-scheduler",
        15,
        kubeconfig=str(kube_cluster_with_controllers.kubeconfig),
    )
    scheduler = CronScheduler(redis, elector, clock=lambda: time.time() + offset)
    try:
        await scheduler.step()  # first sight: leads, notes the next slot
        assert scheduler.is_leader
        offset = 61.0  # a minute later, that slot is due
        await scheduler.step()
    finally:
        await elector.release()
        await elector.close()

    state = await redis.schedule_status(sid)
    assert state is not None and state.run_count == 1

    async def fired() -> dict[str, Any] | None:
        status = await crons.status("every-minute")
        return status if status.get("lastJobId") == state.last_job_id else None

    status = await eventually(fired, what="the fire in the CronSchedule's status")
    assert status["lastScheduleTime"]
    assert status["active"] == [state.last_job_id]  # queued, no worker runs it
    assert status["runCount"] == 1
    await wait_for_event(kube_api, namespace, "every-minute", "Fired")
    lease = await client.CoordinationV1Api(kube_api).read_namespaced_lease(
        "bananas-scheduler", namespace
    )
    assert lease.spec.holder_identity is None  # released on the way out


async def _patch_spec(crons: Crons, name: str, spec: dict[str, Any]) -> None:
    await crons.custom.patch_namespaced_custom_object(
        GROUP, VERSION, crons.namespace, CRONS, name, {"spec": spec},
        _content_type="application/merge-patch+json",
    )  # fmt: skip


async def test_an_edit_fires_on_the_new_schedule_at_once(
    operator: OperatorThread,
    crons: Crons,
    redis: AsyncClient,
    namespace: str,
    kube_cluster_with_controllers: KubeCluster,
) -> None:
    """A daily schedule edited to every five minutes fires at the next five-minute slot
    (it waited for the old daily slot before), then a time-zone edit moves the slot to
    the new zone at once; nextScheduleTime always names the slot that fires."""
    key = route()
    await crons.create("edited", {"schedule": "0 3 * * *", "job": "tick", "routingKey": key})
    sid = f"{namespace}.edited"
    await eventually(lambda: registered(redis, sid), what="the schedule in Redis")
    offset = 0.0
    elector = KubernetesLeaseElector(
        namespace, "bananas-scheduler", "e2e-edits", 15,
        kubeconfig=str(kube_cluster_with_controllers.kubeconfig),
    )  # fmt: skip
    scheduler = CronScheduler(redis, elector, clock=lambda: time.time() + offset)

    async def edited_to(cron: str, zone: str) -> Any:
        found = await registered(redis, sid)
        return found if found and (found.cron, found.timezone) == (cron, zone) else None

    async def reported(slot: datetime) -> dict[str, Any] | None:
        status = await crons.status("edited")
        return status if parse_time(status.get("nextScheduleTime")) == slot else None

    try:
        await scheduler.step()  # first sight: the next slot is the daily one
        first = await redis.schedule_status(sid)
        assert first is not None and first.next_schedule_time is not None
        assert (first.next_schedule_time.hour, first.next_schedule_time.minute) == (3, 0)

        await _patch_spec(crons, "edited", {"schedule": "*/5 * * * *"})
        await eventually(lambda: edited_to("*/5 * * * *", "UTC"), what="the edit in Redis")
        now = datetime.now(UTC)
        slot = now.replace(second=0, microsecond=0) + timedelta(minutes=5 - now.minute % 5)
        await eventually(lambda: reported(slot), what=f"nextScheduleTime {slot}")
        await scheduler.step()  # sees the edit: the next slot is the five-minute one
        offset = (slot - now).total_seconds() + 1.0
        await scheduler.step()
        state = await redis.schedule_status(sid)
        assert state is not None and state.run_count == 1, state
        assert state.last_schedule_time == slot

        await _patch_spec(crons, "edited", {"schedule": "0 9 * * *", "timeZone": "Asia/Tokyo"})
        await eventually(lambda: edited_to("0 9 * * *", "Asia/Tokyo"), what="the zone edit")
        await scheduler.step()
        state = await redis.schedule_status(sid)
        assert state is not None and state.next_schedule_time is not None
        assert state.next_schedule_time.hour == 0  # 09:00 in Tokyo is 00:00 UTC
        await eventually(lambda: reported(state.next_schedule_time), what="the Tokyo slot")
    finally:
        await elector.release()
        await elector.close()


async def test_a_resume_is_one_event(
    operator: OperatorThread, crons: Crons, redis: AsyncClient, kube_api: client.ApiClient,
    namespace: str,
) -> None:  # fmt: skip
    await crons.create("paused", {"schedule": "* * * * *", "job": "x", "suspend": True})
    # (Ready needs a scheduler pod, which this tier does not run: Registered says it.)
    sid = f"{namespace}.paused"
    suspended = await eventually(lambda: registered(redis, sid), what="the schedule in Redis")
    assert suspended.enabled is False
    await _patch_spec(crons, "paused", {"suspend": False})
    message = await wait_for_event(kube_api, namespace, "paused", "Resumed")
    assert message.startswith("resumed; next fire "), message

    async def enabled() -> Any:
        found = await registered(redis, sid)
        return found if found is not None and found.enabled else None

    await eventually(enabled, what="the schedule enabled in Redis")


async def test_unknown_time_zone_is_a_condition(
    operator: OperatorThread,
    crons: Crons,
    redis: AsyncClient,
    namespace: str,
    kube_api: client.ApiClient,
) -> None:
    await crons.create(
        "martian", {"schedule": "0 3 * * *", "timeZone": "Mars/Olympus_Mons", "job": "cleanup"}
    )
    cond = await eventually(
        lambda: crons.condition("martian", "Ready", "False", "InvalidTimeZone"),
        what="Ready=False InvalidTimeZone",
    )
    assert "Mars/Olympus_Mons" in cond["message"]
    await wait_for_event(kube_api, namespace, "martian", "InvalidTimeZone")
    assert await registered(redis, f"{namespace}.martian") is None
    assert operator.alive


async def test_unreachable_redis_is_a_condition(
    operator: OperatorThread, crons: Crons, kube_api: client.ApiClient, namespace: str
) -> None:
    from .redis_fixture import unreachable_redis_url

    await put_secret(kube_api, namespace, unreachable_redis_url(), name="nowhere")
    await crons.create(
        "stranded", {"schedule": "@hourly", "job": "x", "redis": {"secretName": "nowhere"}}
    )
    await eventually(
        lambda: crons.condition("stranded", "RedisReachable", "False", "RedisUnreachable"),
        what="RedisReachable=False",
    )
    await wait_for_event(kube_api, namespace, "stranded", "RedisUnreachable")
    assert operator.alive


async def test_a_deletion_waits_for_its_redis_until_told_to_let_go(
    operator: OperatorThread, crons: Crons, kube_api: client.ApiClient, namespace: str
) -> None:
    """It used to give up after a few attempts, leaving the schedule firing in Redis."""
    from .redis_fixture import unreachable_redis_url

    await put_secret(kube_api, namespace, unreachable_redis_url(), name="gone")
    await crons.create(
        "orphan", {"schedule": "@hourly", "job": "x", "redis": {"secretName": "gone"}}
    )
    await eventually(
        lambda: crons.condition("orphan", "RedisReachable", "False"), what="Redis unreachable"
    )
    await crons.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, CRONS, "orphan")
    stuck = await eventually(
        lambda: crons.condition("orphan", "Registered", "True", "UnregisterFailed"),
        what="Registered=True/UnregisterFailed while the deletion waits",
    )
    assert "bananas.dev/abandon-schedule" in stuck["message"], stuck
    await wait_for_event(kube_api, namespace, "orphan", "UnregisterFailed")
    assert await crons.get("orphan") is not None  # still there: it did not give up
    await crons.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, CRONS, "orphan",
        {"metadata": {"annotations": {"bananas.dev/abandon-schedule": "true"}}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip

    async def gone() -> bool:
        return await crons.get("orphan") is None

    await eventually(gone, what="the CronSchedule let go once told to")


async def test_moving_a_schedule_to_another_redis_leaves_nothing_behind(
    operator: OperatorThread,
    crons: Crons,
    redis: AsyncClient,
    redis_secret: str,
    namespace: str,
    kube_api: client.ApiClient,
) -> None:
    """A change of spec.redis (here its key prefix, in the same server) registers the
    schedule under the new one and unregisters it from the old."""
    await crons.create("mover", {"schedule": "@hourly", "job": "x"})
    sid = f"{namespace}.mover"
    await eventually(lambda: registered(redis, sid), what="the schedule under the old prefix")
    prefix = f"moved-{secrets.token_hex(3)}"
    await _patch_spec(crons, "mover", {"redis": {"prefix": prefix}})
    async with AsyncClient(redis_secret, prefix=prefix) as moved:
        await eventually(lambda: registered(moved, sid), what="the schedule under the new prefix")

        async def left() -> bool:
            return await registered(redis, sid) is None

        await eventually(left, what="nothing left under the old prefix")
    message = await wait_for_event(kube_api, namespace, "mover", "Unregistered")
    assert "removed from the Redis of Secret bananas-redis" in message, message


async def test_deleting_a_cronschedule_unregisters_it(
    operator: OperatorThread,
    crons: Crons,
    redis: AsyncClient,
    namespace: str,
    kube_api: client.ApiClient,
) -> None:
    await crons.create("temporary", {"schedule": "@daily", "job": "x"})
    sid = f"{namespace}.temporary"
    await eventually(lambda: registered(redis, sid), what="the schedule in Redis")
    cron = await crons.get("temporary")
    assert cron is not None and "bananas.dev/finalizer" in cron["metadata"]["finalizers"]

    await crons.custom.delete_namespaced_custom_object(
        GROUP, VERSION, namespace, CRONS, "temporary"
    )

    async def unregistered() -> bool:
        return await registered(redis, sid) is None

    await eventually(unregistered, what="the schedule gone from Redis")

    async def deleted() -> bool:
        return await crons.get("temporary") is None

    await eventually(deleted, what="the CronSchedule gone (finalizer removed)")
    # Its scheduler had no other owner: the garbage collector takes it away.

    async def scheduler_gone() -> bool:
        try:
            await client.AppsV1Api(kube_api).read_namespaced_deployment(
                "bananas-scheduler", namespace
            )
        except ApiException as exc:
            return exc.status == 404
        return False

    # GC_TIMEOUT: the collector learns of a new CRD at its next discovery resync (30 s).
    await eventually(
        scheduler_gone, what="the scheduler Deployment garbage-collected", timeout=GC_TIMEOUT
    )

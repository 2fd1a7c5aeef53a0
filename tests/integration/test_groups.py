"""Groups, fair share and limits (every backend), driven through the broker as a worker would."""

from __future__ import annotations

import pytest

from bananas import AsyncClient, Client, InvalidJobError, JobSpec, JobStatus, Priority
from bananas.admin import Admin
from bananas.broker import Leased, Outcome
from tests.support.waiting import eventually


def fetch(client: Client, count: int = 1, lease_ms: int = 30_000) -> list[Leased]:
    return client.run(client.broker.fetch("default", count, lease_ms))


def ack(client: Client, item: Leased, group: str) -> None:
    outcome = Outcome(item.id, item.attempt, '{"job_id":"x","status":"completed"}', 60_000)
    outcome.group = group
    assert client.run(client.broker.ack("default", [outcome])) == [True]


def submit_group(client: Client, group: str, n: int, **options: object) -> list[str]:
    return client.submit_many([JobSpec("a", {"i": i}, group=group, **options) for i in range(n)])  # type: ignore[arg-type]


def test_groups_are_served_round_robin(client: Client) -> None:
    big = set(submit_group(client, "tenant:big", 100))
    small = set(submit_group(client, "tenant:small", 3))
    plain = client.submit("a")
    order = [fetch(client)[0].id for _ in range(7)]
    kinds = ["big" if i in big else "small" if i in small else "plain" for i in order]
    assert kinds == ["big", "small", "plain", "big", "small", "big", "small"]
    assert plain in order
    assert client.queue_stats().depth[Priority.NORMAL] == 103 - 6
    rest = fetch(client, 200)
    assert len(rest) == 97 and {j.id for j in rest} <= big


def test_one_big_group_still_fills_every_free_slot(client: Client) -> None:
    submit_group(client, "g", 50)
    assert len(fetch(client, 20)) == 20
    assert client.queue_stats().queued == 30


def test_a_concurrency_limit_holds_jobs_in_place(client: Client) -> None:
    client.set_limit("tenant:1", concurrency=2)
    submit_group(client, "tenant:1", 5)
    other = submit_group(client, "tenant:2", 2)
    got = fetch(client, 10)
    ids = {j.id for j in got}
    assert set(other) <= ids and len(got) == 4, "two of tenant:1, and tenant:2 is not blocked"
    assert fetch(client, 10) == []
    assert client.queue_stats().queued == 3, "held back in place, not dead-lettered"
    first = next(j for j in got if j.id not in other)
    ack(client, first, "tenant:1")
    [third] = fetch(client, 10)
    assert third.attempt == 1, "a job held back costs no attempt"
    # a failed attempt gives its slot back too (the retry waits in scheduled)
    second = next(j for j in got if j.id not in other and j.id != first.id)
    failure = Outcome(second.id, second.attempt, "{}", 0, "boom", 60_000)
    failure.group = "tenant:1"
    client.run(client.broker.fail("default", [failure]))
    assert len(fetch(client, 10)) == 1
    assert fetch(client, 10) == []


def test_release_and_reap_give_slots_back(client: Client) -> None:
    client.set_limit("g", concurrency=1)
    first, _ = submit_group(client, "g", 2)
    [leased] = fetch(client, 5)
    assert leased.id == first
    client.run(
        client.broker.release("default", [(leased.id, leased.attempt, Priority.NORMAL, "g")])
    )
    [again] = fetch(client, 5)
    assert again.id == first, "a released job goes back to the head of its group"
    client.redis.zadd(client.broker.route("default").leases, {first: 0})  # its lease ran out
    assert client.run(client.broker.reap("default"))[:2] == (1, 0)
    [reaped] = fetch(client, 5)
    assert reaped.id == first and reaped.attempt == 2
    assert fetch(client, 5) == []


def test_patterns_apply_to_each_group_and_an_exact_key_wins(client: Client) -> None:
    client.set_limit("tenant:*", concurrency=1)
    client.set_limit("tenant:vip", concurrency=3)
    for group in ("tenant:a", "tenant:b", "tenant:vip"):
        submit_group(client, group, 4)
    got = fetch(client, 20)
    assert len(got) == 1 + 1 + 3
    assert client.limits() == {"tenant:*": "0.000000|2|1", "tenant:vip": "0.000000|2|3"}


def test_changing_a_limit_lets_parked_groups_go(client: Client) -> None:
    client.set_limit("g", concurrency=1)
    submit_group(client, "g", 3)
    assert len(fetch(client, 5)) == 1
    assert fetch(client, 5) == []
    client.set_limit("g", concurrency=2)
    assert len(fetch(client, 5)) == 1
    client.set_limit("g")  # no limit
    assert len(fetch(client, 5)) == 1


def test_a_rate_limit_defers_the_group_not_the_others(client: Client) -> None:
    client.set_limit("slow", rate="20/s", burst=1)
    slow = submit_group(client, "slow", 3)
    fast = submit_group(client, "fast", 3)
    got = fetch(client, 10)
    assert sum(j.id in slow for j in got) == 1 and sum(j.id in fast for j in got) == 3
    assert fetch(client, 10) == []
    job = client.get_job(slow[1])
    assert job is not None and job.status is JobStatus.PENDING and job.attempts == 0
    stats = client.queue_stats()
    assert (stats.queued, stats.scheduled) == (2, 0), "a throttled group's token is no job"
    eventually(lambda: client.run(client.broker.promote("default"))[0] == 1, what="the rate")
    assert [j.id for j in fetch(client, 10)] == [slow[1]]


def test_cancel_delay_and_requeue_of_grouped_jobs(client: Client) -> None:
    a, b = submit_group(client, "g", 2)
    assert client.cancel(a)
    assert client.queue_stats().queued == 1
    later = client.submit("a", group="g", delay=0.01)
    eventually(lambda: client.run(client.broker.promote("default"))[0] == 1, what="the delay")
    assert [j.id for j in fetch(client, 5)] == [b, later]
    dead = client.submit("a", group="g", max_retries=0)
    [item] = fetch(client, 1)
    failure = Outcome(item.id, item.attempt, "{}", 0, "boom", -1)
    failure.group = "g"
    client.run(client.broker.fail("default", [failure]))
    assert client.requeue_dead(dead)
    assert [j.id for j in fetch(client, 5)] == [dead]


def test_a_job_name_limit_applies_to_jobs_of_no_group(client: Client) -> None:
    client.set_limit("name:send_sms", concurrency=1)
    sms = [client.submit("send_sms", {"n": n}) for n in range(3)]
    mail = client.submit("send_mail")
    got = fetch(client, 10)
    assert {j.id for j in got} == {sms[0], mail}, "one sms at a time; mail is not held up"
    job = client.get_job(sms[1])
    assert job is not None and job.group == "name:send_sms" and job.attempts == 0
    assert client.queue_stats().queued == 2
    first = next(j for j in got if j.id == sms[0])
    ack(client, first, "name:send_sms")
    assert [j.id for j in fetch(client, 10)] == [sms[1]]
    client.set_limit("name:send_sms")  # removed: the flag goes, the last job is a group's
    client.pause("default", ["low"])
    assert client.queue_stats().paused == [Priority.LOW]
    assert [j.id for j in fetch(client, 10)] == [sms[2]]
    plain = client.submit("send_sms")
    assert [j.id for j in fetch(client, 10)] == [plain]
    assert client.get_job(plain).group is None  # type: ignore[union-attr]
    client.resume("default")
    assert client.paused() == {}


def test_group_and_limit_arguments_are_checked(client: Client) -> None:
    for group in ("", "x" * 201, "a\x01b", "name:send", "t*"):
        with pytest.raises(InvalidJobError):
            client.submit("a", group=group)
    with pytest.raises(InvalidJobError):
        client.submit("a", group="g", unique_for=10)
    for options in ({"rate": "fast"}, {"rate": "0/s"}, {"concurrency": 0}, {"burst": 3}):
        with pytest.raises(InvalidJobError):
            client.set_limit("g", **options)  # type: ignore[arg-type]
    with pytest.raises(InvalidJobError):
        client.set_limit("a*b*", concurrency=1)


async def test_async_set_limit(aclient: AsyncClient) -> None:
    await aclient.set_limit("tenant:*", rate="6000/m", concurrency=5, routing_key="email")
    assert await aclient.limits("email") == {"tenant:*": "10.000000|5|5"}
    await aclient.set_limit("tenant:*", routing_key="email")
    assert await aclient.limits("email") == {}


def test_the_dashboards_run_now_and_delete_keep_jobs_in_their_groups(client: Client) -> None:
    admin = Admin(client.broker)
    client.set_limit("g", concurrency=1)
    later = client.submit("a", {"late": True}, group="g", delay=100)
    first, second = submit_group(client, "g", 2)
    assert client.run(admin.run_now("default", [later])) == 1
    assert client.queue_stats().queued == 3, "run now: the job joined its group"
    assert client.run(admin.delete("default", [second])) == 1
    assert client.queue_stats().queued == 2, "delete: the job left its group"
    [leased] = fetch(client, 5)
    assert leased.id == first and fetch(client, 5) == [], "concurrency=1 holds"
    ack(client, leased, "g")
    [leased] = fetch(client, 5)
    assert leased.id == later, "the deleted job is gone from its group, the run-now one waits"
    ack(client, leased, "g")
    assert fetch(client, 5) == [] and client.queue_stats().queued == 0

"""The pods' environment is rendered from bananas.config's table, and the processes read it.

Renaming a variable in ``bananas.config`` (or the operator setting one the
worker never reads) must fail here, not in a cluster where pods start
misconfigured.
"""

from __future__ import annotations

from typing import Any

import pytest

from bananas.config import ENV_VARS, Settings, render_env
from bananas.models import Priority
from bananas.operator.config import SchedulerSettings
from bananas.operator.scheduler_deployment import render_scheduler
from bananas.operator.specs import RedisRef, SpecError, parse_workerpool
from bananas.operator.workerpool import render_deployment

POOL_SPEC: dict[str, Any] = {
    "image": "registry.example/ml:1.2",
    "app": "ml.tasks",
    "routingKeys": ["gpu", "gpu-batch"],
    "priorities": ["high", "low"],
    "concurrency": 3,
    "jobTimeout": "30m",
    "maxRetries": 1,
    "logLevel": "DEBUG",
    "terminationGracePeriodSeconds": 120,
}


def _container_env(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    return env


def _worker_env(pool_body: dict[str, Any]) -> list[dict[str, Any]]:
    return _container_env(render_deployment(pool_body, parse_workerpool(POOL_SPEC), 1))


def _scheduler_env(cron_body: dict[str, Any], app: str = "") -> list[dict[str, Any]]:
    settings = SchedulerSettings(image="bananas:test", app=app)
    objects = render_scheduler("ops", RedisRef.model_validate({}), cron_body, settings)
    return _container_env(objects[-1])


def _plain(env: list[dict[str, Any]], **from_refs: str) -> dict[str, str]:
    """The values the process would see: literal values, plus stand-ins for valueFrom."""
    values = {e["name"]: e["value"] for e in env if "value" in e}
    for e in env:
        if "valueFrom" in e:
            values[e["name"]] = from_refs[e["name"]]
    return values


def test_every_worker_variable_is_one_settings_reads(pool_body: dict[str, Any]) -> None:
    names = [e["name"] for e in _worker_env(pool_body)]
    assert len(names) == len(set(names))
    assert set(names) <= set(ENV_VARS.values()), set(names) - set(ENV_VARS.values())


@pytest.mark.parametrize("app", ["", "jobs.tasks"])
def test_every_scheduler_variable_is_one_settings_reads(
    cron_body: dict[str, Any], app: str
) -> None:
    names = [e["name"] for e in _scheduler_env(cron_body, app)]
    assert len(names) == len(set(names))
    assert set(names) <= set(ENV_VARS.values()), set(names) - set(ENV_VARS.values())
    assert ("BANANAS_APP" in names) == bool(app)


def test_the_worker_reads_the_pool_it_was_rendered_for(pool_body: dict[str, Any]) -> None:
    env = _plain(
        _worker_env(pool_body),
        REDIS_URL="redis://queue:6379/0",
        POD_NAME="email-7d9f-abcde",
        POD_NAMESPACE="apps",
    )
    settings = Settings.from_env(env)
    assert settings.redis_url == "redis://queue:6379/0"
    assert settings.app == "ml.tasks"
    assert settings.routing_keys == ("gpu", "gpu-batch")
    assert settings.priorities == (Priority.HIGH, Priority.LOW)
    assert settings.concurrency == 3
    assert settings.job_timeout == 1800.0
    assert settings.max_retries == 1
    assert settings.shutdown_timeout == 115.0  # 5 s below the grace period
    assert settings.log_level == "DEBUG"
    assert settings.log_format == "json"
    assert settings.metrics_port == 8000
    assert settings.pod_name == "email-7d9f-abcde"
    assert settings.pod_namespace == "apps"


def test_the_scheduler_reads_its_lease(cron_body: dict[str, Any]) -> None:
    env = _plain(
        _scheduler_env(cron_body),
        REDIS_URL="redis://queue:6379/0",
        POD_NAME="bananas-scheduler-0",
        POD_NAMESPACE="ops",
    )
    settings = Settings.from_env(env)
    assert settings.leader_election == "kubernetes"
    assert settings.leader_lease_name == "bananas-scheduler"
    assert settings.pod_name == "bananas-scheduler-0"
    assert settings.log_format == "json"


def test_render_env_spells_values_as_from_env_reads_them() -> None:
    entries = render_env(
        {
            "enable_scheduler": False,
            "routing_keys": ("a", "b"),
            "priorities": [Priority.HIGH, Priority.NORMAL],
            "concurrency": 4,
        }
    )
    assert entries == [
        {"name": "ENABLE_SCHEDULER", "value": "false"},
        {"name": "WORKER_ROUTING_KEYS", "value": "a,b"},
        {"name": "WORKER_PRIORITIES", "value": "high,normal"},
        {"name": "WORKER_CONCURRENCY", "value": "4"},
    ]
    settings = Settings.from_env({e["name"]: e["value"] for e in entries})
    assert settings.enable_scheduler is False
    assert settings.routing_keys == ("a", "b")
    assert settings.concurrency == 4


def test_render_env_refuses_a_field_without_a_variable() -> None:
    with pytest.raises(KeyError):
        render_env({"redis_options": "x"})


def test_one_cron_loop_per_redis(pool_body: dict[str, Any]) -> None:
    spec = parse_workerpool(POOL_SPEC)
    alone = _container_env(render_deployment(pool_body, spec, 1))
    assert "ENABLE_SCHEDULER" not in {e["name"] for e in alone}  # the workers' loop is the only one
    served = _container_env(render_deployment(pool_body, spec, 1, cron_elsewhere=True))
    env = _plain(served, REDIS_URL="redis://q", POD_NAME="p", POD_NAMESPACE="apps")
    assert Settings.from_env(env).enable_scheduler is False


def test_the_users_env_still_wins_over_the_cron_switch(pool_body: dict[str, Any]) -> None:
    spec = parse_workerpool({**POOL_SPEC, "env": [{"name": "ENABLE_SCHEDULER", "value": "true"}]})
    env = _container_env(render_deployment(pool_body, spec, 1, cron_elsewhere=True))
    assert [e for e in env if e["name"] == "ENABLE_SCHEDULER"] == [
        {"name": "ENABLE_SCHEDULER", "value": "true"}
    ]


def test_a_custom_prefix_reaches_the_pods(
    pool_body: dict[str, Any], cron_body: dict[str, Any]
) -> None:
    spec = parse_workerpool({**POOL_SPEC, "redis": {"prefix": "team-b"}})
    env = _plain(
        _container_env(render_deployment(pool_body, spec, 1)),
        REDIS_URL="redis://q", POD_NAME="p", POD_NAMESPACE="apps",
    )  # fmt: skip
    assert Settings.from_env(env).prefix == "team-b"
    ref = RedisRef.model_validate({"prefix": "team-b"})
    objects = render_scheduler("ops", ref, cron_body, SchedulerSettings(image="b:1"))
    assert objects[-1]["metadata"]["name"] == "bananas-scheduler-bananas-redis-team-b"
    scheduler = _plain(
        _container_env(objects[-1]), REDIS_URL="redis://q", POD_NAME="s", POD_NAMESPACE="ops"
    )
    assert Settings.from_env(scheduler).prefix == "team-b"
    default = _container_env(render_deployment(pool_body, parse_workerpool(POOL_SPEC), 1))
    assert "BANANAS_PREFIX" not in {e["name"] for e in default}


def test_bananas_prefix_in_env_is_refused() -> None:
    with pytest.raises(SpecError, match=r"BANANAS_PREFIX is set by the operator from spec.redis"):
        parse_workerpool({**POOL_SPEC, "env": [{"name": "BANANAS_PREFIX", "value": "x"}]})
    with pytest.raises(SpecError, match="prefix"):
        parse_workerpool({**POOL_SPEC, "redis": {"prefix": "{tag}"}})

"""Settings from the environment: every variable, and a clear error for every bad value."""

from __future__ import annotations

import pytest

from bananas.config import Settings, WorkerMode
from bananas.durations import parse_duration
from bananas.errors import ConfigError
from bananas.models import Priority


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("250ms", 0.25),
        ("12.5", 12.5),
        ("0", 0),
        ("1m30s", 90),
        ("100us", 1e-4),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "5 m", "-3s", "3x", "s", "1h-5m", "inf", "nan"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_every_seed_variable_is_read() -> None:
    s = Settings.from_env(
        {
            "REDIS_URL": "redis://r:6379/2",
            "WORKER_CONCURRENCY": "4",
            "JOB_TIMEOUT": "5m",
            "MAX_RETRIES": "7",
            "WORKER_ROUTING_KEYS": "gpu, default",
            "WORKER_PRIORITIES": "low,high",
            "WORKER_JOB_TYPES": "a,b",
            "WORKER_MODE": "job-specialized",
            "LOG_LEVEL": "debug",
            "LOG_FORMAT": "json",
            "SCHEDULER_INTERVAL": "500ms",
            "ENABLE_SCHEDULER": "false",
            "SHUTDOWN_TIMEOUT": "45s",
            "LEASE_DURATION": "12s",
            "METRICS_PORT": "0",
        }
    )
    assert (s.redis_url, s.concurrency, s.job_timeout, s.max_retries) == (
        "redis://r:6379/2",
        4,
        300,
        7,
    )
    assert s.routing_keys == ("gpu", "default")
    assert s.priorities == (Priority.HIGH, Priority.LOW)
    assert (s.job_types, s.mode) == (("a", "b"), WorkerMode.JOB_SPECIALIZED)
    assert (s.log_level, s.log_format, s.scheduler_interval) == ("DEBUG", "json", 0.5)
    assert (s.enable_scheduler, s.shutdown_timeout, s.lease_duration, s.metrics_port) == (
        False,
        45,
        12,
        0,
    )


@pytest.mark.parametrize(
    ("var", "value", "names"),
    [
        ("WORKER_CONCURRENCY", "0", "a whole number >= 1"),
        ("WORKER_CONCURRENCY", "ten", "a whole number >= 1"),
        ("JOB_TIMEOUT", "soon", "Go duration"),
        ("WORKER_ROUTING_KEYS", "gpu pool", "routing keys"),
        ("WORKER_PRIORITIES", "urgent", "high, normal, low"),
        ("WORKER_MODE", "turbo", "job-specialized"),
        ("ENABLE_SCHEDULER", "maybe", "true or false"),
        ("LOG_FORMAT", "xml", "text or json"),
        ("METRICS_PORT", "70000", "port number"),
    ],
)
def test_bad_values_name_the_variable_and_the_forms(var: str, value: str, names: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({var: value})
    assert str(caught.value).startswith(f"{var}={value!r} is not valid")
    assert names in str(caught.value)


def test_modes_that_need_more() -> None:
    with pytest.raises(ConfigError, match="WORKER_JOB_TYPES"):
        Settings.from_env({"WORKER_MODE": "job-specialized"})
    with pytest.raises(ConfigError, match="WORKER_ROUTING_KEYS"):
        Settings.from_env({"WORKER_MODE": "specialized"})


def test_settings_survive_the_trip_through_a_childs_environment() -> None:
    from bananas.config import Settings

    settings = Settings().with_changes(
        routing_keys=["gpu", "default"],
        priorities=["high", "low"],
        job_types=["a", "b"],
        mode="specialized",
        job_timeout=0.25,
        enable_scheduler=False,
        processes=3,
        max_jobs_per_child=7,
        max_memory_per_child=512,
    )
    assert Settings.from_env(settings.to_env()) == settings


def test_worker_processes_auto_is_the_cpu_count() -> None:
    from bananas.config import Settings, cpu_count

    assert Settings.from_env({"WORKER_PROCESSES": "auto"}).processes == cpu_count() >= 1
    assert Settings.from_env({"WORKER_PROCESSES": "2"}).processes == 2
    for bad in ("0", "-1", "many"):
        with pytest.raises(ConfigError, match="WORKER_PROCESSES"):
            Settings.from_env({"WORKER_PROCESSES": bad})


def test_recycling_limits_are_not_negative() -> None:
    from bananas.config import Settings

    for field in ("max_jobs_per_child", "max_memory_per_child"):
        with pytest.raises(ConfigError, match="must not be negative"):
            Settings().with_changes(**{field: -1}).check()

"""What ``submit`` refuses before anything is written, and the forms it accepts."""

from __future__ import annotations

import math

import pytest

from bananas import InvalidJobError
from bananas.client import ClientCore, JobSpec
from bananas.config import Settings
from bananas.errors import ConfigError


def core() -> ClientCore:
    return ClientCore(
        success_ttl=60,
        failure_ttl=60,
        max_payload_bytes=1 << 20,
        max_retries=3,
        prefix="t",
        clock=lambda: 1_000_000.0,
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (JobSpec("a", math.nan), "nan"),
        (JobSpec("a", {"x": [1, {"y": math.inf}]}), "inf"),
        (JobSpec("send email"), "whitespace"),
        (JobSpec("send\nemail"), "whitespace"),
        (JobSpec("send\x00email"), "control"),
        (JobSpec("a", job_id=""), "job_id must be a non-empty"),
        (JobSpec("a", timeout=0), "timeout must be more than 0"),
        (JobSpec("a", timeout="0s"), "timeout must be more than 0"),
        (JobSpec("a", delay="10x"), "delay '10x' is not a duration"),
        (JobSpec("a", delay=-1), "delay must be a finite number of seconds, at least 0"),
        (JobSpec("a", delay=math.nan), "delay must be a finite number of seconds"),
        (JobSpec("a", delay=1e20), "at most 3153600000 [(]100 years[)]"),
        (JobSpec("a", delay="1000000000h"), "delay must be a finite number"),
        (JobSpec("a", delay=[10]), "got list"),
    ],
)
def test_bad_input_is_refused_naming_the_rule(spec: JobSpec, message: str) -> None:
    with pytest.raises(InvalidJobError, match=message):
        core().build(spec)


def test_durations_take_go_forms() -> None:
    job = core().build(JobSpec("a", delay="10m", timeout="1m30s"))
    # A delay counts from Redis' own clock: sent as "+ms", not as an instant.
    assert (job.due_ms, job.delay_ms, job.due) == (0, 600_000, "+600000")
    assert '"timeout":90.0' in job.record


def test_a_null_in_a_payload_is_fine() -> None:
    assert '"payload":{"x":null}' in core().build(JobSpec("a", {"x": None})).record


def test_job_timeout_zero_is_refused() -> None:
    with pytest.raises(ConfigError, match="JOB_TIMEOUT"):
        Settings.from_env({"JOB_TIMEOUT": "0"})
    with pytest.raises(ConfigError, match="JOB_TIMEOUT must be more than 0"):
        Settings(job_timeout=0).check()

"""One classifier for everything between a spec.redis reference and a Redis answer."""

from __future__ import annotations

import re

import pytest

from bananas.errors import BananasConnectionError, BananasError, ConfigError
from bananas.operator.conditions import condition_status, find_condition
from bananas.operator.handler_support import RedisProblem, classify
from bananas.operator.kube import KubernetesApiError
from bananas.operator.reasons import REDIS_SIDE, ConditionType, Reason


@pytest.mark.parametrize(
    ("exc", "reason", "message"),
    [
        (KubernetesApiError(404, "no Secret q"), Reason.REDIS_SECRET_NOT_FOUND, "no Secret q"),
        (KubernetesApiError(403, "forbidden"), Reason.SECRET_UNREADABLE, "forbidden"),
        (ConfigError("bad url"), Reason.INVALID_REDIS_URL, "bad url"),
        (BananasConnectionError("refused"), Reason.REDIS_UNREACHABLE, "refused"),
        (TimeoutError(), Reason.REDIS_UNREACHABLE, "Redis did not answer in time"),
        (BananasError("OOM command not allowed"), Reason.REDIS_ERROR, "OOM command not allowed"),
    ],
)
def test_classify(exc: BaseException, reason: Reason, message: str) -> None:
    problem = classify(exc)
    assert (problem.reason, problem.message) == (reason, message)


def test_a_problem_already_classified_passes_through() -> None:
    problem = RedisProblem(Reason.INVALID_REDIS_URL, "x")
    assert classify(problem) is problem


def test_only_redis_itself_counts_as_a_redis_error() -> None:
    assert classify(TimeoutError()).reason in REDIS_SIDE
    assert classify(KubernetesApiError(404, "gone")).reason not in REDIS_SIDE


def test_reasons_are_unique_camel_case() -> None:
    values = [r.value for r in Reason] + [t.value for t in ConditionType]
    assert all(re.fullmatch(r"(?:[A-Z][a-z]+)+", v) for v in values), values
    assert len({r.value for r in Reason}) == len(Reason)


def test_condition_lookup_tolerates_hand_edited_status() -> None:
    conditions = [
        "junk",
        {"type": "Ready"},  # no status: not a condition
        {"type": "RedisReachable", "status": "False", "reason": "RedisUnreachable"},
    ]
    assert condition_status(conditions, "RedisReachable") == "False"
    assert condition_status(conditions, "Ready") is None
    assert find_condition(None, "Ready") is None
    assert find_condition({"type": "Ready"}, "Ready") is None


def test_an_undecodable_value_is_a_refusal_not_a_retry() -> None:
    message = (
        "failed to convert new object (apps/v1, Kind=Deployment) to proper version: unable to"
        " convert unstructured object to apps/v1, Kind=Deployment: quantities must match"
    )
    assert KubernetesApiError(500, message).invalid
    assert not KubernetesApiError(500, "etcdserver: request timed out").invalid
    assert KubernetesApiError(422, "spec.template: Invalid value").invalid
    assert not KubernetesApiError(409, "conflict").invalid

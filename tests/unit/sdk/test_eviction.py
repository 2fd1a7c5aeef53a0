"""The maxmemory-policy check: which policies can evict what, and what each mode does."""

from __future__ import annotations

import logging

import pytest

from bananas.errors import EvictionPolicyError
from bananas.eviction import CheckMode, PolicyRisk, _policy_of, classify, judge, parse_mode


@pytest.mark.parametrize(
    ("policy", "risk"),
    [
        ("noeviction", PolicyRisk.SAFE),
        ("volatile-lru", PolicyRisk.RESULTS),
        ("volatile-ttl", PolicyRisk.RESULTS),
        ("allkeys-lru", PolicyRisk.QUEUE),
        ("allkeys-random", PolicyRisk.QUEUE),
        ("something-new", PolicyRisk.UNKNOWN),
        (None, PolicyRisk.UNKNOWN),
    ],
)
def test_classify(policy: str | None, risk: PolicyRisk) -> None:
    assert classify(policy) is risk


def test_refuse_raises_for_allkeys_naming_policy_fix_and_override() -> None:
    with pytest.raises(EvictionPolicyError) as exc:
        judge("allkeys-lru", CheckMode.REFUSE, "redis://r:6379")
    text = str(exc.value)
    assert "allkeys-lru" in text and "CONFIG SET maxmemory-policy noeviction" in text
    assert "EVICTION_POLICY_CHECK=warn" in text and exc.value.policy == "allkeys-lru"


def test_warn_logs_for_allkeys_and_volatile(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "bananas.eviction"):
        assert judge("allkeys-lfu", CheckMode.WARN, "r") is PolicyRisk.QUEUE
        assert judge("volatile-lru", CheckMode.REFUSE, "r") is PolicyRisk.RESULTS
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and "allkeys-lfu" in messages[0] and "results" in messages[1]


def test_safe_off_and_unreadable_do_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, "bananas.eviction"):
        judge("noeviction", CheckMode.REFUSE, "r")
        judge("allkeys-lru", CheckMode.OFF, "r")
        judge(None, CheckMode.REFUSE, "r")
    assert [r.levelno for r in caplog.records] == [logging.INFO]
    assert "INFO not allowed" in caplog.records[0].getMessage()


def test_a_cluster_reply_is_judged_by_its_worst_node() -> None:
    reply = {
        "a:1": {"maxmemory-policy": "noeviction"},
        "b:2": {"maxmemory-policy": "allkeys-lru"},
        "c:3": {"maxmemory-policy": "volatile-lru"},
    }
    assert _policy_of(reply) == "allkeys-lru"
    assert _policy_of({"maxmemory-policy": "noeviction"}) == "noeviction"
    assert _policy_of([]) is None


def test_parse_mode() -> None:
    assert parse_mode(" Warn ") is CheckMode.WARN
    with pytest.raises(ValueError, match="refuse, warn, off"):
        parse_mode("maybe")


def test_an_oom_error_names_the_limit() -> None:
    from bananas.errors import RedisOutOfMemoryError
    from bananas.eviction import _limit_of, with_limit

    exc = with_limit(RedisOutOfMemoryError("refused"), 25165824)
    assert "maxmemory 25165824 bytes (24.0 MiB)" in str(exc) and exc.maxmemory == 25165824
    assert "limit unknown" in str(with_limit(RedisOutOfMemoryError("refused"), None))
    assert _limit_of({"a": {"maxmemory": "10"}, "b": {"maxmemory": "5"}}) == 5

"""Pure pieces: keys, validation, backoff, URL parsing."""

from __future__ import annotations

import random

import pytest

from bananas import InvalidRoutingKeyError, validate_routing_key
from bananas.connection import mask_url, parse_url
from bananas.errors import ConfigError
from bananas.keys import KeySpace
from bananas.models import Priority
from bananas.worker_runtime.retry import backoff_delay


def test_route_keys_share_one_hash_tag() -> None:
    r = KeySpace("bananas").route("gpu")
    keys = [
        *r.queues,
        r.jobs,
        r.leases,
        r.attempts,
        r.scheduled,
        r.dead,
        r.wake,
        r.result("j1"),
        r.notify("j1"),
    ]
    assert all("{gpu}" in k for k in keys)
    assert r.queue(Priority.HIGH) == "bananas:route:{gpu}:queue:high"
    assert KeySpace("x").leader("s") == "x:leader:{s}"


@pytest.mark.parametrize("key", ["gpu", "us-east-1", "high_memory", "a" * 64, "A9_-"])
def test_valid_routing_keys(key: str) -> None:
    assert validate_routing_key(key) == key


@pytest.mark.parametrize("key", ["", "a" * 65, "gpu pool", "gpu{1}", "é", "a:b", None, 5])
def test_invalid_routing_keys(key: object) -> None:
    with pytest.raises(InvalidRoutingKeyError, match="1-64 characters"):
        validate_routing_key(key)


def test_backoff_doubles_with_jitter_and_a_cap() -> None:
    rng = random.Random(7)
    for attempt, full in [(1, 2), (2, 4), (3, 8), (10, 1024)]:
        delay = backoff_delay(attempt, rng=rng)
        assert full * 0.75 <= delay <= full
    assert backoff_delay(40, cap=60, rng=rng) <= 60
    assert backoff_delay(10_000, rng=rng) <= 3600


def test_url_forms() -> None:
    single = parse_url("rediss://user:pw@host:6380/3?ssl_ca_certs=/ca.pem")
    assert (single.kind, single.tls, single.options["ssl_ca_certs"]) == ("single", True, "/ca.pem")
    sentinel = parse_url("redis+sentinel://:pw@s1:26379,s2:26380/mymaster/2")
    assert (sentinel.kind, sentinel.nodes, sentinel.service, sentinel.db, sentinel.password) == (
        "sentinel",
        (("s1", 26379), ("s2", 26380)),
        "mymaster",
        2,
        "pw",
    )
    cluster = parse_url("redis+cluster://a:7000,b:7001")
    assert (cluster.kind, cluster.nodes) == ("cluster", (("a", 7000), ("b", 7001)))
    with pytest.raises(ConfigError, match="unsupported Redis URL"):
        parse_url("http://x")
    with pytest.raises(ConfigError, match="names its service"):
        parse_url("redis+sentinel://s1:26379")


def test_masking() -> None:
    assert mask_url("redis://:s3cret@h:1/0") == "redis://:***@h:1/0"
    assert mask_url("redis://u:s3cret@h:1") == "redis://u:***@h:1"
    assert mask_url("redis://h:1") == "redis://h:1"

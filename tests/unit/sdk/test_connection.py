"""Redis URL parsing and masking."""

from __future__ import annotations

import pytest

from bananas.connection import mask_url, parse_url
from bananas.errors import ConfigError


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
